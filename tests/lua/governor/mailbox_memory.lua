-- issue 12: queued messages were malloc'd outside the counting allocator (150 x 10 MiB to
-- itself: RSS 1.56 GB, Lua heap 10 MiB). Queued bytes count toward the memory cap with
-- the heap: under memory=16M, fewer than 16 messages of 1 MiB can wait.
local s = string.rep("x", 1 << 20)
stage.waitfor("big", function (v) end)
local ok, why = 0, nil
for i = 1, 150 do
  local n, err = stage.signal("main:big", s)
  if n == 1 then ok = ok + 1 else why = err end
end
print("some queued", ok > 5, "not beyond the cap", ok < 16, why)
