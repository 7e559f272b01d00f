-- stage.call flattens every table argument, as STAGE's __call does (not only the first);
-- {f, ...} puts the function first; nil arguments stay.
local function show(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  print(table.concat(t, " "))
  return select("#", ...)
end
print(stage.call(show, {1, 2}, "x", {3, 4}, 5))
print(stage.call({show, "a", "b"}, {"c"}, "d"))
print(stage.call(show, nil, "CANCEL"))
print(stage.call(show, {1, 2, k = "v"}))
print(pcall(stage.call, {"not a function"}))
