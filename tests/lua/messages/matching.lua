-- Hierarchical matching: the most specific registered id wins; dots in the stage part do
-- not count. Auto ids are unique; query, unregister and extra values.
local function on(id) stage.waitfor(id, function (...) print(id, _WAITFOR[-1], _WAITFOR[0], ...) end) end
on("svc:group.msg.")
on("svc:group.")
on("svc:")
on("a.b:")
-- "main:ID" sends message ID to an actor of stage main (this one): IDs may hold ':'
stage.signal("main:svc:group.msg.cb", 1)
stage.signal("main:svc:group.other", 2)
stage.signal("main:svc:x", 3)
stage.signal("main:a.b:c.d", 4)
stage.signal("nothing.here", 5)

local ids = {}
for i = 1, 100 do ids[stage.waitfor(function () end)] = true end
local n = 0
for _ in pairs(ids) do n = n + 1 end
print("unique auto ids", n)

stage.waitfor("extra", function (a, b, v) print("extras", a, b, v) end, "A", "B")
local fn, extras = stage.waitfor("extra")
print("query", type(fn), extras[1], extras[2], #extras)
stage.signal("extra", "V")
stage.waitfor("gone", function () print("never") end)
stage.waitfor("gone", nil)
print("after unregister", stage.waitfor("gone"))
stage.signal("gone")
