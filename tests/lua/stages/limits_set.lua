-- The built-in stages' limits come from --set STAGE.LIMIT=N (the .flags file): past one, the
-- request is answered nil with the limit named, the first time logged, and the stage keeps
-- serving what is within its limits.
-- The three stages are three actors that answer in parallel: their answers are collected and
-- printed sorted once all ten have come.
local got = {}
stage.waitfor("r", function(a, b)
  local line
  if type(a) == "table" then
    local ks = {}
    for k, v in pairs(a) do ks[#ks + 1] = k .. "=" .. tostring(v) end
    table.sort(ks)
    line = "R\t" .. table.concat(ks, ",")
  else
    line = "R\t" .. tostring(a) .. "\t" .. tostring(b)
  end
  got[#got + 1] = line
  if #got == 10 then
    table.sort(got)
    for _, l in ipairs(got) do print(l) end
  end
end)
stage.signal("index:s?b1=r", {K = {i = 1}})
stage.signal("index:s?b2=r", {K = {i = 2}})
stage.signal("index:s?b3=r", {K = {i = 3}}) -- a third board: over index.boards=2
stage.signal("index:s?b1=r", {["K-too-long"] = {i = 3}}) -- over index.key_bytes=8
stage.signal("index:f?b1=r", {1, 6}) -- over index.batch=5
stage.signal("index:s?b1=r", {L = {i = 4}}) -- still serving
stage.signal("route:@=r", {["t.a"] = "cb", ["t.b"] = "cb"}) -- over route.topics=1
stage.signal("route:@=r", {["t.a"] = "cb"})
stage.signal("ticket:@c1=r", {1})
stage.signal("ticket:@c2=r", {1}) -- over ticket.categories=1
