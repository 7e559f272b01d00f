-- An error inside a thread is logged; its callback is removed uncalled; the node serves on.
local to = thread.new(function () error("thread boom") end)
to.waitfor(function () print("never called") end)
stage.submit(0, function () local t = nil; return t.x end)
local to2 = thread.new(function () return "still serving" end)
to2.waitfor(function (v) print(v) end)
