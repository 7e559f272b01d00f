-- The index stage with the forms of STAGE's bin/package/test_index.lua: set without a
-- reply, total, forEach, range (by score and by key), get, del; tiers; a batch.
local function dump(v, ind)
  ind = ind or ""
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. dump(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local steps = {}
local function next_step(...) local f = table.remove(steps, 1); if f then f(...) end end

stage.waitfor("total_callback", function(n) print("TOTAL", n) next_step() end)
stage.waitfor("set_callback", function(r) print("SET", dump(r)) next_step() end)
stage.waitfor("forEach_callback", function(r) print("FOREACH", dump(r)) next_step() end)
stage.waitfor("get_callback", function(r) print("GET", dump(r)) next_step() end)
stage.waitfor("delete_callback", function(r) print("DELETE", dump(r)) next_step() end)
stage.waitfor("batch", function(r) print("BATCH", dump(r)) next_step() end)

local value = {}
for i = 1, 5 do value[string.format("KR%d", i)] = {i = i * 100, v = {10, 20, i}} end
print(stage.signal("index:s?rank", value)) -- no reply asked
steps = {
  function() stage.signal("index:f?rank=forEach_callback", {1, 3}) end,
  function() stage.signal("index:r?rank=forEach_callback", {"KR3", 1, 2}) end,
  function() stage.signal("index:r?rank=forEach_callback", {250, 2}) end,
  function() stage.signal("index:g?rank=get_callback", "KR2") end,
  function() stage.signal("index:s?rank=set_callback", {KR2 = {i = 1000}, KR9 = {I = {7, 8}}}) end,
  function() stage.signal("index:g?rank/=get_callback", {"KR9", "none"}) end,
  function() stage.signal("index:t?rank/2=total_callback", 0) end,
  function() stage.signal("index:d?rank/0=delete_callback", {"KR2", "nope"}) end,
  function() stage.signal("index:batch=batch", {["#1.set:rank/1"] = {KR1 = {i = 9999}},
    ["#2.forEach:rank/1"] = {1, 2}, ["#3.total:rank"] = 0}) end,
}
stage.signal("index:t?rank=total_callback", 0)
