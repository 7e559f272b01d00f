-- bundle.json (STAGE docs/api/bundle.md): JSON text or a JSON file -> Lua values, a table ->
-- JSON text. The documented example reads a file, then turns the table back into text.
local path = os.tmpname()
local f = assert(io.open(path, "w"))
f:write('{"stage": {"name": "lobby", "ports": [7400, 7401], "debug": false, "ratio": 0.25}}')
f:close()

local json = bundle.json(path)
local json_str = bundle.json(json)
print(json.stage.name, json.stage.ports[2], json.stage.debug, json.stage.ratio)
local again = bundle.json(json_str)
print(again.stage.name, #again.stage.ports, math.type(again.stage.ports[1]))

-- leading spaces before a file name are skipped, as in STAGE
print(bundle.json("  " .. path).stage.name)

-- the second argument picks a part: a member, an element (from 0), or several by path
print(bundle.json('{"a": 1, "b": 2}', "b"))
print(bundle.json('[10, 20, 30]', 0))
local pick = bundle.json('{"a": {"b": [10, 20, 30]}, "c": "x"}', {first = "a.b.#0", "c", "a.b.#2", none = "a.z"})
print(pick.first, pick[1], pick[2], pick.none)

-- arrays, objects, escapes, floats and integers survive the round trip
local t = {list = {1, 2.5, "three", true}, nested = {deep = {er = "x\"y\\z\n"}}, [10] = "ten"}
local back = bundle.json(bundle.json(t))
print(back.list[1], back.list[2], back.list[3], back.list[4], back.nested.deep.er == t.nested.deep.er, back["10"])
print(bundle.json({}), bundle.json({1, 2, 3}), bundle.json({x = 1.0}))
-- null becomes nil: absent from the table
local n = bundle.json('{"a": null, "b": [1, null, 3]}')
print(n.a, n.b[1], n.b[2], n.b[3])
-- a function is called and its result converted
print(bundle.json(function(x) return {v = x} end, 7))

-- bad input: nil and a message naming what and where; the caller goes on
print(bundle.json('{"a": 1,, "b": 2}'))
print(bundle.json('[1, 2'))
print(bundle.json("no/such/file.json"))
print(bundle.json({f = print}))
print(bundle.json({list = {1, 2, {ok = 1, bad = 0/0}}}))
local cycle = {}
cycle.self = cycle
local ok, why = bundle.json(cycle)
print(ok, why:match("tables nested deeper than 200 %(a cycle%?%)") ~= nil)
print(bundle.json(42))
os.remove(path)
