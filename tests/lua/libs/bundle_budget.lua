-- A long conversion counts against the entry's CPU budget (here 0.2 s, --stage): the C
-- converters check it as they go, so bundle.json or bundle.bson of a huge table ends with
-- the budget error instead of holding the worker, and the actor goes on serving.
local shared = {}
for i = 1, 200 do shared[i] = i end
local t = {}
for i = 1, 100000 do t[i] = shared end   -- 20 million values to write, cheap to build
stage.addtask(1, function () bundle.json(t) print("json: never here") end)
stage.addtask(2, function () bundle.bson({t = t}) print("bson: never here") end)
stage.addtask(50, function () print("still serving") end)
