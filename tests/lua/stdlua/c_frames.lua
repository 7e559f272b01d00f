-- The node's C frames below a script keep their function and stack slots from the debug
-- library (calling the actor's entry function with made-up arguments crashed the node);
-- Lua frames are served as in standard Lua, at the same levels.
local function c_level()
  for level = 2, 20 do
    local info = debug.getinfo(level, "S")
    if not info then return nil end
    if info.what == "C" then return level - 1 end   -- as seen from the caller
  end
end
local level = c_level()
print(level ~= nil, debug.getinfo(level, "f").func, debug.getinfo(level, "S").what)
print(debug.getlocal(level, 1), debug.setlocal(level, 1, io.stdout))
local function inner(a, b)
  local name = debug.getlocal(1, 1)
  local info = debug.getinfo(1, "nSl")
  local caller = debug.getinfo(2, "f").func
  return name, debug.getlocal(2, 1), info.currentline, caller ~= nil, debug.getlocal(inner, 2)
end
print(inner(1, 2))
print(debug.setlocal(1, 1, c_level), c_level == c_level)
local co = coroutine.create(function (x) coroutine.yield() end)
coroutine.resume(co, 7)
print(debug.getlocal(co, 1, 1), debug.getinfo(co, 1, "S").what)
local function me()
  local co = coroutine.running()
  return debug.getinfo(co, 1, "n").name, debug.getlocal(co, 1, 1), debug.getinfo(co, 2, "S").what
end
print(coroutine.wrap(function (arg) local a, b, c = me() return a, b, c end)("v"))
print(me())
