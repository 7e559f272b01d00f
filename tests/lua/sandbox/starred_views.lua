-- Starred names as STAGE shows them: pairs(_G) lists them under their name (pairs(_G)
-- keeps Lua's rule: every variable the script can read), pairs(_SANDBOX) as "*NAME";
-- __.NAME reads the shared value and __.NAME = value sets it (a function updates it under
-- the name's lock, as before).
_SANDBOX[""] = { "*S", "P" }
S, P, L = "shared", "plain", "local"
local function keys(t)
  local r = {}
  for k, v in pairs(t) do
    if k == "S" or k == "*S" or k == "P" or k == "L" then r[#r + 1] = k .. "=" .. tostring(v) end
  end
  table.sort(r)
  return table.concat(r, " ")
end
print(keys(_G))
print(keys(_SANDBOX))
print(coroutine.wrap(function () return keys(_G), keys(_SANDBOX) end)())
print(__.S, _SANDBOX["*S"], _SANDBOX.S, _SANDBOX.L)
__.S = "set through __"
print(S, __.S)
__.S = function (v) return v .. ", updated" end
print(S)
_SANDBOX["*S"] = "set through _SANDBOX"
print(S)
__.S = nil
print(S, __.S)
print(pcall(function () return __.L end))
print(pcall(function () __.L = 1 end))
print(tostring(_SANDBOX):match("^sandbox: ") ~= nil, getmetatable(_SANDBOX))
