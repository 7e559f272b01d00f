-- print converts each value with the global tostring, as Lua 5.3's print does.
local original = tostring
tostring = function (v) return "<" .. original(v) .. ">" end
print(1, "a", nil, true)
print()
tostring = function () return {} end
local ok, err = pcall(print, "x")
tostring = original
print(ok, err)
print(setmetatable({}, { __tostring = function () return "T" end }), 2.5)
print(coroutine.wrap(function ()
  tostring = function () return "in co" end   -- the coroutine's own global
  print("y")
  return "back"
end)())
