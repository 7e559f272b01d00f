-- Round-robin spreads 900 messages over 3 actors as 300/300/300; a broadcast reaches each
-- of N instances exactly once.
function report() if SPREAD and ONCE then print(SPREAD) print(ONCE) end end
local seen = {}
local total = 0
stage.waitfor("tally", function (n)
  seen[n] = (seen[n] or 0) + 1
  total = total + 1
  if total == 900 then SPREAD = ("spread %d %d %d"):format(seen[1], seen[2], seen[3]) report() end
end)
for i = 1, 3 do
  stage.spawn("rr", function (me)
    stage.waitfor("hit", function () stage.signal("main:tally", me) end)
  end, i)
end
for i = 1, 900 do stage.signal("rr:hit") end

local got = {}
stage.waitfor("pong", function (n)
  got[#got + 1] = n
  if #got == 50 then
    table.sort(got)
    local once = true
    for k = 1, 50 do once = once and got[k] == k end
    ONCE = "broadcast to 50, each once: " .. tostring(once)
    report()
  end
end)
for i = 1, 50 do
  stage.spawn("many", function (me) stage.waitfor("ping", function () stage.signal("main:pong", me) end) end, i)
end
print("queued", stage.signal("*many:ping"))
