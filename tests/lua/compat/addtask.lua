-- stage.addtask forms of STAGE (stage/lua.cpp __addtask): (fn, ...) runs at once,
-- (task, ms) re-arms, (task, ms, fn) and (task, fn) replace the function, (task, nil)
-- cancels; each answers whether the task was still pending.
stage.addtask(function (a, b) print("no delay", a, b) end, "x", "y")
local slow = stage.addtask(60000, function (v) print("rescheduled", v) end, "arg")
print("re-arm", stage.addtask(slow, 5))
local t2 = stage.addtask(60000, function () print("old fn") end, "kept")
print("replace", stage.addtask(t2, 10, function (v) print("new fn", v) end))
local t3 = stage.addtask(20, function () print("old fn 3") end)
print("replace fn", stage.addtask(t3, function () print("new fn 3") end))
local t4 = stage.addtask(1, function () print("never") end)
print("cancel", stage.addtask(t4, nil), "again", stage.addtask(t4, nil))
print("pending", stage.addtask(t3))
