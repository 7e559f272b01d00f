-- A walk keeps the Lua strings of the keys it pushed (node/lua/lua_rank.c, at most
-- 4,096 a state, shared by its boards, then a fresh cache): rows keep their right keys past
-- that bound, after keys are removed and others added (a freed key's memory reused), and
-- with another board walked in between.
local b = stage.rank()
local N = 5000
for i = 1, N do assert(b:set(1, string.format("k%05d", i), i)) end
local function check(label, expect)
  local rows = b:walk(1, 1, N)
  local bad = 0
  for r = 1, b:count(1) do
    if rows[r].k ~= expect(r) or rows[r].d ~= r then bad = bad + 1 end
  end
  print(label, b:count(1), bad)
end
check("first walk", function(r) return string.format("k%05d", N + 1 - r) end)
check("second walk", function(r) return string.format("k%05d", N + 1 - r) end)
for i = 1, N, 2 do assert(b:remove(string.format("k%05d", i))) end
for i = 1, N, 2 do assert(b:set(1, string.format("n%05d", i), i)) end
check("after remove and add", function(r)
  local i = N + 1 - r
  return string.format(i % 2 == 1 and "n%05d" or "k%05d", i)
end)
local other = stage.rank()
for i = 1, 10 do assert(other:set(1, string.format("n%05d", i), -i)) end
local rows, ok = other:walk(1, 1, 10), 0
for r = 1, 10 do if rows[r].k == string.format("n%05d", r) then ok = ok + 1 end end
print("other board", ok)
check("after the other board", function(r)
  local i = N + 1 - r
  return string.format(i % 2 == 1 and "n%05d" or "k%05d", i)
end)
