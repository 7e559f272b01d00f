-- stage.once runs once per key in the node; spawn returns an address; spawned actors are
-- counted by stage; an actor's plain globals are its own.
print("first", stage.once("init", function () return "ran" end))
print("again", stage.once("init", function () return "ran again" end))
stage.once("init", nil)
print("forgotten", stage.once("init", function () return "ran after forget" end))
SECRET = "main's"
local addr = stage.spawn("kid", function (greeting)
  stage.waitfor("peek", function () return greeting, SECRET, stage.once("init", function () end) end)
end, "hello")
print("address", addr.node == process.name, addr.stage, math.type(addr.actor))
stage.waitfor("peeked", function (...) print("kid says", ...) end)
stage.signal("kid:peek=peeked")
print(pcall(stage.spawn, "other-node/kid", function () end))
