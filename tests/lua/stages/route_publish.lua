-- route: subscribe stages to topics, publish to all ("*topic") or offer to one ("topic"),
-- hierarchical topics, the fail callback when nobody is subscribed, unsubscribe.
for _, sid in ipairs({"s1", "s2"}) do
  stage.spawn(sid, function(me)
    stage.waitfor("news", function(topic, v) stage.signal("main:got", me, topic, v) end)
    stage.waitfor("ready", function()
      stage.signal("route:@", {["chat.room1"] = "news", ["game."] = "news"})
      stage.signal("main:subscribed")
    end)
    stage.signal(me .. ":ready")
  end, sid)
end
local n, got = 0, {}
stage.waitfor("got", function(...) got[#got + 1] = table.concat({...}, " ") end)
stage.waitfor("failed", function(topic, v) print("main", "failed", topic, v) end)
stage.waitfor("subscribed", function()
  n = n + 1
  if n < 2 then return end
  stage.signal("route:*chat.room1", "to all")
  stage.addtask(100, function()
    stage.signal("route:game.level.3", "offer 1")
    stage.signal("route:game.level.3", "offer 2")
    stage.signal("route:nobody!failed", "lost")
  end)
  stage.addtask(400, function()
    table.sort(got)
    for _, l in ipairs(got) do print(l) end
  end)
end)
