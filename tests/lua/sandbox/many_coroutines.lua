-- Many coroutines over many snapshots (exercises chain compaction) stay correct.
local results = {}
for i = 1, 200 do
  _G["G" .. (i % 7)] = i
  COUNT = i
  local co = coroutine.wrap(function ()
    local c = COUNT
    coroutine.yield()
    results[#results + 1] = (COUNT == c) and (_G["G" .. (i % 7)] == i) and c == i
  end)
  co()
  COUNT = -1
  co()
end
local ok = 0
for _, r in ipairs(results) do if r then ok = ok + 1 end end
print(ok, COUNT)
