-- setmetatable(_G, nil) is ordinary Lua: the globals have no metatable to begin with, and
-- coroutines resume afterwards as before (this crashed the node in lua_upvaluejoin).
print(getmetatable(_G), debug.getmetatable(_G))
print(setmetatable(_G, nil) == _G)
X = "x"
local co = coroutine.create(function (a) coroutine.yield(a + 1, X) return "done" end)
print(coroutine.resume(co, 1))
print(coroutine.resume(co))
print(coroutine.wrap(function () return X, type(print) end)())
print(getmetatable(_G))
