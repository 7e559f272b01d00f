-- rawget, rawset, next and pairs see the same globals before and after a coroutine took
-- a snapshot of them (before: the snapshot moved values out of reach of rawget and next).
X = "x"
local function count()
  local n = 0
  for _ in pairs(_G) do n = n + 1 end
  return n
end
local function ncount()
  local n, k = 0, next(_G)
  while k ~= nil do n = n + 1; k = next(_G, k) end
  return n
end
local before_pairs, before_next = count(), ncount()
print(before_pairs == before_next, rawget(_G, "X"))
coroutine.wrap(function () return X, print end)()
print(rawget(_G, "X"), rawget(_G, "print") == print, rawget(_G, "nothing"))
print(count() == before_pairs, ncount() == before_next)
local seen = {}
for k, v in next, _G do seen[k] = v end
print(seen.X, seen.print == print, seen.string == string)
rawset(_G, "R", "raw")                 -- rawset after a snapshot: seen by the next one
print(R, coroutine.wrap(function () return R end)())
X = nil
coroutine.wrap(function () end)()
print(rawget(_G, "X"), count() == before_pairs, ncount() == before_next)
print(pcall(rawset, _G, nil, 1))
rawset(_G, "R", nil)                   -- rawset of nil deletes, snapshot or not
print(rawget(_G, "R"), R, coroutine.wrap(function () return R end)())
