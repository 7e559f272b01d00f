-- bundle.proxy (STAGE docs/api/bundle.md): the documented example, word for word.
local T = {
    value = 10,
    level = 1
}

local proxy = bundle.proxy(T, {
    ["value"] = { 10, 20, 30, function (proxy, edges, k, v)
        print("CHANGE VALUE",  k, v)
        for i, p in ipairs(edges) do
            print("", i, p)
            proxy.level = math.floor(p / 10)
        end
    end },
    ["level"] = { 1, 2, 3, function (proxy, edges, k, v)
        print("CHANGE LEVEL", k, v)
        for i, p in ipairs(edges) do
            print("", i, p)
        end
    end }
})

proxy.value = 30    -- "CHANGE VALUE" value 30 / 1 20 / "CHANGE LEVEL" level 2 / ...
print("T:", T.value, T.level, "through the proxy:", proxy.value, proxy.level)

-- no edge crossed: no call; going down crosses nothing either
proxy.value = 30
proxy.value = 5
print("quiet:", T.value)

-- the old value nil (or absent) collects every edge the new one reaches
local U = {}
local p2 = bundle.proxy(U, {
    score = { 10, 20, function (p, edges, k, v) print("A", k, v, table.concat(edges, ",")) end,
              30, 40, function (p, edges, k, v) print("B", k, v, table.concat(edges, ",")) end },
})
p2.score = 34       -- A score 34 10,20 / B score 34 30
p2.score = 45       -- B score 45 40

-- a function per key gets (proxy, old value, key, new value); false keeps the old value
local V = {hp = 100}
local p3 = bundle.proxy(V, {
    hp = function (p, old, k, v)
        print("hp", old, "->", v)
        if v < 0 then return false end
        p.hp = v * 2   -- from inside its own handler: stored, no handler again
    end,
    [""] = function (p, old, k, v) print("any", k, old, v) end,
})
p3.hp = 40
print("hp now", V.hp)  -- the outer assignment stores 40 after the handler's 80
p3.hp = -1
print("hp kept", V.hp)
p3.mp = 7
p3[1] = "one"
print("V:", V.mp, V[1], #p3)

-- strings and booleans are edges by equality
local W = {state = "idle"}
local p4 = bundle.proxy(W, { state = { "run", function (p, e, k, v) print("running", e[1]) end } })
p4.state = "walk"
p4.state = "run"

-- the proxy iterates, measures and calls like its table
local keys = {}
for k in pairs(p3) do keys[#keys + 1] = tostring(k) end
table.sort(keys)
print("pairs:", table.concat(keys, " "))
print("call:", p3() == V, tostring(bundle.proxy({}, "named")):match("^named:%[") ~= nil)

-- a handler's error reaches the assignment, and the key is usable again afterwards
local p5 = bundle.proxy({}, { x = function () error("no x here") end })
print(pcall(function () p5.x = 1 end))
print(pcall(function () p5.x = 2 end))
-- bad input
print(pcall(bundle.proxy, 42))
print(pcall(bundle.proxy, {}, 42))
