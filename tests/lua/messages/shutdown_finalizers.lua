-- issue 12: when the node closed the actor states at exit, the scheduler, jobs and timers
-- were freed already: a finalizer calling stage.signal, stage.submit, thread.new or
-- stage.spawn segfaulted the node (null sn_sched), and stage.addtask or a lock leaked.
-- The states now close while the runtime stands, and new work is refused cleanly.
-- (The finalizer is made with setmetatable's __gc: no other way exists today.)
local function calls(who)
  local out = {}
  local function try(name, fn)
    local ok, a, b = pcall(fn)
    a = tostring(a):gsub("^.-:%d+: ", "")  -- no file:line in the expected output
    out[#out + 1] = string.format("%s %s %s %s", name, ok, a, tostring(b))
  end
  try("signal", function () return stage.signal("main:x", 1) end)
  try("signal_other", function () return stage.signal("w:x", 1) end)
  try("submit", function () return stage.submit(0, function () end) end)
  try("thread", function () return type(thread.new(function () end)) end)
  try("spawn", function () return stage.spawn("late", function () end) end)
  try("addtask", function () return type(stage.addtask(10, function () end)) end)
  try("lock", function () return stage.signal(">L.got", 1) end)
  return out
end
stage.spawn("w", function ()
  stage.waitfor("x", function () end)
  keep_w = setmetatable({}, {__gc = function () calls("w") end})
end)
keep_main = setmetatable({}, {__gc = function ()
  for _, line in ipairs(calls("main")) do print(line) end
end})
print("main ran")
