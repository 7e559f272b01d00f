-- The sandbox's functions between a global read and a script's metamethod stay out of
-- reach: debug.getinfo gives no C function of a frame (the sandbox's C functions also
-- refuse anything but its globals), and its Lua functions keep their upvalues from the
-- debug library, as C functions do.
_ENV[""] = { "P" }
local found = {}
local h = setmetatable({}, { __index = function (_, k)
  for level = 2, 3 do   -- the sandbox's frames between the read and this handler
    local info = debug.getinfo(level, "fS")
    if info then found[#found + 1] = info.func or info.what end
  end
  return "from h: " .. k
end })
setmetatable(_G, { __index = h })
print(MISSING)
print(coroutine.wrap(function () return P end)())
local c, lua, hidden = 0, 0, 0
for _, f in ipairs(found) do
  if f == "C" then
    c = c + 1                           -- a C frame, its function withheld
  elseif select("#", debug.getupvalue(f, 1)) == 0 then
    hidden = hidden + 1
  else
    lua = lua + 1
  end
end
print(c > 0, hidden > 0, lua)
