-- issue 12: a new actor with mailbox=100 accepted 99 messages: its start message, still
-- queued (one worker: main holds it), took a slot. Exactly 100 fit.
stage.spawn("w", function () stage.waitfor("x", function () end) end)
local ok, full, why = 0, 0, nil
for i = 1, 101 do
  local n, err = stage.signal("w:x", i)
  if n == 1 then ok = ok + 1 else full = full + 1; why = err end
end
print("queued", ok, "refused", full, why)
