-- A flood of 1,000,000 messages into a slow actor: the mailbox bound holds, the drops are
-- counted by the sender, and what is delivered arrives in order. SN_FLOOD_MESSAGES makes it
-- smaller where every message costs ten times more (the TSan build, scripts/test.sh).
local N = math.tointeger(tonumber(os.getenv("SN_FLOOD_MESSAGES") or "")) or 1000000
stage.spawn("slow", function ()
  local last, got, bad = 0, 0, 0
  stage.waitfor("x", function (i)
    for k = 1, 5000 do end             -- slow: about 20 us a message
    if i <= last then bad = bad + 1 end
    last, got = i, got + 1
  end)
  stage.waitfor("report", function () return got, bad, last end)
end)
local sent, dropped, why = 0, 0, nil
for i = 1, N do
  local n, err = stage.signal("slow:x", i)
  if n == 1 then sent = sent + 1 else dropped = dropped + 1; why = err end
end
local function ask() stage.signal("slow:report=report") end
stage.waitfor("report", function (got, bad, last)
  if got == nil or got < sent then  -- the mailbox may still be full, or still draining
    stage.addtask(10, ask)
    return
  end
  print("sent + dropped == N", sent + dropped == N, "dropped > 0", dropped > 0, why)
  print("delivered all sent", got == sent, "out of order", bad)
end)
ask()
