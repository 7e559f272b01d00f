-- issue 12: the memory cap sees the Lua heap plus the bytes queued for the actor. With 12
-- MiB waiting under memory=16M, the actor's own heap cannot take 3 MiB more (6 MiB at the
-- peak of string.rep). One worker: main queues all of it before w's top level runs.
stage.spawn("w", function ()
  local ok, err = pcall(string.rep, "y", 3 << 20)
  print("3 MiB with 12 MiB queued", ok, (tostring(err):match("not enough memory")))
  stage.waitfor("big", function (v) end)
end)
local s = string.rep("x", 1 << 20)
local queued = 0
for i = 1, 12 do queued = queued + stage.signal("w:big", s) end
print("queued", queued)
