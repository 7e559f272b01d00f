-- issue 12: mailboxes were bounded by count only. 150 messages of 1 MiB to itself under
-- mailbox_bytes=8M: 7 fit (each is 1 MiB plus its header), the rest are "mailbox full",
-- logged once and counted as drops.
local s = string.rep("x", 1 << 20)
local got = 0
stage.waitfor("big", function (v) got = got + #v end)
local ok, why = 0, nil
for i = 1, 150 do
  local n, err = stage.signal("main:big", s)
  if n == 1 then ok = ok + 1 else why = err end
end
print("queued", ok, why)
stage.addtask(50, function () print("received MiB", got >> 20) end)
