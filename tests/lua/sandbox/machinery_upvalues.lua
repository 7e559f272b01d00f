-- The sandbox's coroutine functions keep its tables as upvalues (the coroutine registry, the
-- savers, the holder factory, the resume depth); the debug library must not hand them to a
-- script, nor let it replace them.
local wrapped = coroutine.wrap(function () return "ran" end)
local seen = 0
for _, f in ipairs({coroutine.create, coroutine.resume, coroutine.wrap, wrapped}) do
  for i = 1, 6 do
    if debug.getupvalue(f, i) ~= nil or debug.setupvalue(f, i, {}) ~= nil then seen = seen + 1 end
  end
end
print("upvalues seen", seen)
print(pcall(debug.upvalueid, coroutine.resume, 1))
print(wrapped(), coroutine.resume(coroutine.create(function () return X == nil end)))
