-- __metatable protects a metatable set on _G exactly as on any table; its other events
-- apply to _G; debug.getmetatable/setmetatable see through the protection.
local mt = { __metatable = "locked", __tostring = function () return "the globals" end }
setmetatable(_G, mt)
print(getmetatable(_G), tostring(_G))
print(pcall(setmetatable, _G, {}))
print(debug.getmetatable(_G) == mt)
print(debug.setmetatable(_G, nil) == _G, getmetatable(_G))
print(pcall(setmetatable, _G, 5))
local calls = setmetatable(_G, { __call = function (self, a) return "called " .. a end })
print(calls == _G, _G("x"))
setmetatable(_G, { __index = { FALLBACK = "from __index" } })
print(FALLBACK, rawget(_G, "FALLBACK"))
print(coroutine.wrap(function () return FALLBACK end)())
setmetatable(_G, nil)
print(FALLBACK)
