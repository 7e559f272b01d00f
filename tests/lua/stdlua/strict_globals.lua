-- Lua 5.3's etc/strict.lua, as is: a metatable on _G whose __newindex and __index refuse
-- undeclared names. It must work as in standard Lua, in coroutines too, and leave the
-- sandbox working (_ENV[""], coroutine snapshots).
local getinfo, error, rawset, rawget = debug.getinfo, error, rawset, rawget
local mt = getmetatable(_G)
if mt == nil then
  mt = {}
  setmetatable(_G, mt)
end
mt.__declared = {}
local function what ()
  local d = getinfo(3, "S")
  return d and d.what or "C"
end
mt.__newindex = function (t, n, v)
  if not mt.__declared[n] then
    local w = what()
    if w ~= "main" and w ~= "C" then
      error("assign to undeclared variable '"..n.."'", 2)
    end
    mt.__declared[n] = true
  end
  rawset(t, n, v)
end
mt.__index = function (t, n)
  if not mt.__declared[n] and what() ~= "C" then
    error("variable '"..n.."' is not declared", 2)
  end
  return rawget(t, n)
end

print(getmetatable(_G) == mt)
A = 1                                      -- main chunk: declares A
print(A, rawget(_G, "A"))
print(pcall(function () return UNDECLARED end))
print(pcall(function () B = 2 end))
print(pcall(function () return A end))
local co = coroutine.wrap(function ()
  local ok, e = pcall(function () return NOPE end)
  coroutine.yield(A, ok, e)
  return pcall(function () C = 3 end)
end)
print(co())
print(co())
print(pcall(function () return A + 1 end))
print(tostring(nil), type(print))          -- standard names still resolve
