-- setmetatable(_G, {}) changes nothing a script can see: inside coroutines every global
-- is still there (they were all nil).
local mt = {}
print(setmetatable(_G, mt) == _G, getmetatable(_G) == mt)
Y = 42
print(coroutine.wrap(function () return Y, type(string.format), tostring(nil) end)())
local co = coroutine.create(function () return math.floor(2.5), Y end)
print(coroutine.resume(co))
setmetatable(_G, nil)
print(getmetatable(_G), Y)
