-- `while true do end` in a handler, a timer, a job, a coroutine, a spawned actor's top
-- level, and behind pcall: each fails with the budget error; the actor and node go on.
stage.spawn("spin", function ()
  stage.waitfor("loop", function () while true do end end)
  stage.waitfor("swallow", function ()   -- pcall cannot swallow the budget error
    while true do pcall(function () while true do end end) end
  end)
  stage.waitfor("co", function () coroutine.wrap(function () while true do end end)() end)
  stage.waitfor("ping", function () return "pong" end)
end)
stage.spawn("spinning-chunk", function () while true do end end)
local got = {}
stage.waitfor("answer", function (v, err) got[#got + 1] = tostring(v) .. " " .. tostring(err) end)
stage.signal("spin:loop=answer")
stage.signal("spin:swallow=answer")
stage.signal("spin:co=answer")
stage.signal("spin:ping=answer")
stage.signal("spinning-chunk:ping=answer")
stage.addtask(1, function () while true do end end)
stage.submit(0, function () while true do end end)
stage.addtask(1, function ()  -- runs after the runaway timer was stopped
  local function wait()
    if #got < 5 then stage.addtask(20, wait) return end
    table.sort(got)
    for _, g in ipairs(got) do print(g) end
    print("main still serving", stage.signal(":self", 1))
  end
  stage.waitfor("self", function (x) return x + 1 end)
  wait()
end)
