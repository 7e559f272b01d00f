-- STAGE's table target stage.signal({target, addr, timeout}, ...): an address (as
-- stage.spawn or _WAITFOR[1] gives) picks the actor; a timeout in ms drops the message if
-- it is not handled by then (a request hears nil, "timeout").
local addrs = {}
for i = 1, 2 do
  addrs[i] = stage.spawn("w", function (n)
    stage.waitfor("who", function () return "w" .. n end)
    stage.waitfor("slow", function ()
      local t = os.clock()
      while os.clock() - t < 0.3 do end
    end)
    stage.waitfor("late", function () print("never: handled after its timeout") end)
  end, i)
end
local got = {}
stage.waitfor("answer", function (v, err)
  got[#got + 1] = "answer " .. tostring(v) .. " " .. tostring(err)
  if #got == 4 then
    table.sort(got)
    print(table.concat(got, "\n"))
  end
end)
print(stage.signal({"w:who=answer", addrs[2]}))
print(stage.signal({"w:who=answer", 5000, addrs[2]}))
print(stage.signal({"who=answer", addrs[1]}))
stage.signal({"w:slow", addrs[1]})
print(stage.signal({"w:late=answer", addrs[1], 50}))
print(pcall(stage.signal, {42}))
print(pcall(stage.signal, {"w:who", {node = "elsewhere", actor = 1}}))
print(pcall(stage.signal, {"w:who", {stage = "w"}}))
print(pcall(stage.signal, {"w:who", "addr"}))
print(pcall(stage.signal, {"*w:who", addrs[1]}))
