-- The stage.waitfor forms of STAGE (stage/lua.cpp __waitfor): () lists the waiting ids,
-- (n, fn, ...) makes a random id of n characters (at least 4), (id, extra...) replaces the
-- extra values of a registered id (nil when none), and (id, fn) alone keeps them.
stage.waitfor("a", function () end)
stage.waitfor("b", function () end, 1, 2)
local names = {}
for k, v in pairs(stage.waitfor()) do names[#names + 1] = k .. "=" .. #v end
table.sort(names)
print(table.concat(names, " "))
local id
id = stage.waitfor(8, function (x, v)
  print("random id", x, v, #_WAITFOR[-1])
  stage.waitfor(id, function (y, w) print("kept", y, w) end) -- a new fn alone
  stage.signal(id, "W")
end, "X")
print("length", #id, id:match("^%w+$") ~= nil)
print("short", #stage.waitfor(1, function () end))
print("replace", stage.waitfor(id, "Y") == id)
print("replace missing", stage.waitfor("missing", "Z"))
stage.signal(id, "V")
