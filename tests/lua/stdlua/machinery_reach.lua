-- The sandbox's functions a script can reach from a metamethod's caller (debug.getinfo's
-- "f") refuse anything but the sandbox's globals, and its Lua functions keep their
-- upvalues from the debug library, as C functions do.
_ENV[""] = { "P" }
local found = {}
local h = setmetatable({}, { __index = function (_, k)
  for level = 2, 3 do   -- the sandbox's frames between the read and this handler
    local info = debug.getinfo(level, "f")
    if info then found[#found + 1] = info.func end
  end
  return "from h: " .. k
end })
setmetatable(_G, { __index = h })
print(MISSING)
print(coroutine.wrap(function () return P end)())
local c, lua, hidden = 0, 0, 0
for _, f in ipairs(found) do
  if debug.getinfo(f, "S").what == "C" then
    local ok = pcall(f, {}, "x", 1)     -- a plain table, not an env
    if ok == false then c = c + 1 end
  elseif select("#", debug.getupvalue(f, 1)) == 0 then
    hidden = hidden + 1
  else
    lua = lua + 1
  end
end
print(c > 0, hidden > 0, lua)
