-- The index's get of one key and its set of {i = integer} entries are answered in C
-- (node/lua/lua_rank.c) on a board that exists; every other form takes the general path in
-- preload/stages.lua. Both must answer the same, errors byte for byte: this file's .out was
-- made by the general path alone. Limits from the .flags: 4 keys a board, keys of 8 bytes.
-- (A set of several keys runs in next()'s order, which varies from run to run: each such
-- set here answers the same in any order.)
local function dump(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. dump(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local steps = {
  {"s?b", {A = {i = 5}}},                       -- makes the board
  {"s?b", {B = {i = 7, v = {1, 2}}}},           -- C path, with a value
  {"s?b", {A = {i = 5}, C = {i = 3}}},          -- two entries (ranks not order-dependent)
  {"g?b", "B"},                                 -- C path: value and rank
  {"g?b/2", "B"},                               -- no score in tier 2: no I
  {"g?b", "nobody"},                            -- absent: {}
  {"g?b", "a\0b"},                              -- NUL: the general path's error
  {"g?b", {"A", "C"}},                          -- a list: general path
  {"g?b/", "A"},                                -- every tier: general path
  {"s?b", {A = {i = 4.0}}},                     -- a float score: general path
  {"s?b", {A = {i = "high"}}},
  {"s?b", {[""] = {i = 1}}},
  {"s?b", {["far-too-long"] = {i = 1}}},
  {"s?b", {["x\0y"] = {i = 1}}},
  {"s?b", {A = {i = 1, I = {[2] = 9}}}},        -- scores in two tiers: general path
  {"s?b", {A = 5}},
  {"s?b", {[7] = {i = 1}}},
  {"s?b/2", {C = {i = 11}}},                    -- C path, tier 2
  {"g?b/2", "C"},
  {"s?b", {D = {i = 1}}},                       -- the fourth key
  {"s?b", {E = {i = 2}}},                       -- a fifth: the board is full
  {"s?b", {F = {i = 9}, G = {i = 2}}},          -- full whatever the order
  {"g?b", "A"},
  {"t?b", 0},
  {"f?b", {1, 5}},                              -- a walk, twice (its key strings kept)
  {"f?b", {1, 5}},
  {"r?b", {"B", 1, 2}},
  {"d?b/0", {"D"}},                             -- D's key freed, H may take its memory:
  {"s?b", {H = {i = 1}}},                       -- the walk's kept string for it is a miss
  {"f?b", {1, 5}},
}
local i = 0
local function next_step()
  i = i + 1
  local s = steps[i]
  if not s then stage.exit() return end
  stage.signal("index:" .. s[1] .. "=r", s[2])
end
stage.waitfor("r", function(r, e)
  print(steps[i][1], dump(r), e)
  next_step()
end)
next_step()
