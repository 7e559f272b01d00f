-- bundle.bson (STAGE docs/api/bundle.md), through libbson. The documented example:
local bson = bundle.bson({name = "HELLO"})
local bson_str = bundle.bson(bson).name
print(bson_str, #bson, type(bson))

-- the bytes are the BSON of the document: length, one string element, the end
print(string.unpack("<i4", bson), bson:byte(5), bson:sub(6, 9), bson:byte(-1))

-- round trip: integers, floats, booleans, strings, nested tables, arrays, number keys
local t = {
    i = 7, big = 1 << 40, f = 0.5, yes = true, no = false, s = "text",
    nested = {list = {1, "two", {3}}, empty = {}},
    [3] = "three", [-1] = "minus one",
    bin = "\0\1\2\255",
}
local b = bundle.bson(bundle.bson(t))
print(b.i, math.type(b.i), b.big, b.f, b.yes, b.no, b.s)
print(b.nested.list[1], b.nested.list[2], b.nested.list[3][1], #b.nested.list, next(b.nested.empty))
print(b[3], b[-1], b.bin == t.bin, #b.bin)
-- a function is called and its result converted
print(bundle.bson(bundle.bson(function (v) return {v = v} end, 9)).v)

-- bad input: nil and a message naming what and where
print(bundle.bson("not bson at all"))
print(bundle.bson(string.pack("<i4", 12) .. "\16a\0\1\0\0"))
print(bundle.bson(string.pack("<i4", 10) .. "\99a\0\1\0\0"))
print(bundle.bson({f = print}))
print(bundle.bson({ok = {[true] = 1}}))
print(bundle.bson({["a\0b"] = 1}))
local cycle = {}
cycle.me = cycle
local ok, why = bundle.bson(cycle)
print(ok, why:match("deeper than 200") ~= nil)
print(bundle.bson(42))
