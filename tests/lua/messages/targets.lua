-- Every in-node target form, with three actors of stage "w".
local results = {}
local function note(s)
  results[#results + 1] = s
  if #results == 7 then  -- every answer is in: print them in a stable order
    table.sort(results)
    for _, r in ipairs(results) do print(r) end
  end
end
for i = 1, 3 do
  stage.spawn("w", function (n)
    stage.waitfor("who", function () return "w" .. n end)
    stage.waitfor("main:hello", function (v) return "w" .. n .. " got sid+msg " .. v end)
    stage.waitfor("count", function () stage.signal("main:counted", n) end)
  end, i)
end
stage.waitfor("self", function (v) note("async self " .. v) end)
stage.waitfor("sync", function (a, b) return a + b, "sync-ok" end)
stage.waitfor("answer", function (v, err)  -- which w answered depends on the round-robin
  note(("answer " .. tostring(v) .. " " .. tostring(err)):gsub("w%d", "wN"))
end)
local counted = {}
stage.waitfor("counted", function (n)
  counted[#counted + 1] = n
  if #counted == 3 then
    table.sort(counted)
    note("broadcast reached " .. table.concat(counted, ","))
  end
end)

print("self queued", stage.signal("self", "v1"))
print("sync", stage.signal(":sync", 2, 3))
print("one", stage.signal("w:who=answer"))
print("local", stage.signal("=w:who=answer"))
print("remote", stage.signal("+w:who=answer"))
print("all", stage.signal("*w:count"))
print("sid+msg", stage.signal("w+hello=answer", "hi"))
print("no route", stage.signal("nobody:x=answer"))
print("bad target", pcall(stage.signal, "w:"))

