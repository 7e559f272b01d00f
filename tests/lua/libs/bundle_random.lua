-- bundle.random (STAGE docs/api/bundle.md): WELL512 numbers; a table R keeps the generator's
-- state between calls. The documented example:
local R = {}
local a, b, c = bundle.random(R, 1, 1000), bundle.random(R, 1, 1000), bundle.random(R, 1, 1000)
for _, v in ipairs({a, b, c}) do assert(math.type(v) == "integer" and v >= 1 and v <= 1000) end
print("three in 1..1000")
print("state kept in R:", #R, math.type(R[0]))

-- the same seed (R[""]) gives the same numbers; the state in R continues the sequence
local function run(seed)
    local S = {[""] = seed}
    local out = {}
    for i = 1, 5 do out[i] = bundle.random(S, 1, 100) end
    return table.concat(out, ","), S
end
local x, S1 = run(42)
local y = run(42)
local z = run(43)
print("same seed, same numbers:", x == y, "other seed differs:", x ~= z)
print("seed consumed:", S1[""] == nil)
local copy = {}
for k, v in pairs(S1) do copy[k] = v end
print("a copied state continues alike:", bundle.random(S1, 1, 1e9 // 1) == bundle.random(copy, 1, 1e9 // 1))
-- {seed, delta} seeds too
print("seed table:", run({7, 3}) == run({7, 3}))

-- no arguments: a float in [0, 1); one bound: 1..e
local f = bundle.random()
print("float:", math.type(f), f >= 0 and f < 1)
local lo, hi = math.huge, -math.huge
for i = 1, 2000 do
    local v = bundle.random(6)
    lo, hi = math.min(lo, v), math.max(hi, v)
end
print("1..6 reached both ends:", lo, hi)
for i = 1, 200 do
    local v = bundle.random(-5, 5)
    assert(v >= -5 and v <= 5)
end
print("-5..5 ok")
-- a group: the function gets a `random` drawing from R's generator; R keeps the state
local G = {[""] = 99}
local first = bundle.random(G, function (random)
    return random(1, 10), random(), random(3)
end)
print("group:", math.type(first), #G)
-- bad input raises, like math.random
print(pcall(bundle.random, 10, 1))
print(pcall(bundle.random, R, "x"))
