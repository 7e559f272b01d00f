-- process.clock (a stage-node addition): the monotonic clock, finer than process.tick's
-- millisecond, for timing; it never goes back.
local a = process.clock
local x = 0
for i = 1, 1000 do x = x + i end
local b = process.clock
print(type(a), b >= a, b - a < 1)
local seen = {}
for i = 1, 50 do seen[process.clock] = true end
local n = 0
for _ in pairs(seen) do n = n + 1 end
print("finer than a millisecond", n > 1)
