-- thread.signal only inside thread.new functions; to.waitfor(nil) removes the callback.
print(pcall(thread.signal, 1))
local to = thread.new(function () thread.signal("a"); return "b" end)
to.waitfor(function (v) print("should not print", v) end)
to.waitfor(nil)
print("removed")
print(pcall(thread.new, function () end, { sock = io.stdout }))
-- inside a stage.submit job it is an error too; the job reports through a thread callback
_ENV[""] = { "*INJOB" }
stage.submit(0, function ()
  local ok, err = pcall(thread.signal, 1)
  INJOB = tostring(ok) .. " " .. err
end)
local function poll()
  thread.new(function () return INJOB end).waitfor(function (v)
    if v then print("in a job:", v) else poll() end
  end)
end
poll()
