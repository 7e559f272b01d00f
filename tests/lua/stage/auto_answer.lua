-- A handler's results go back to the sender, under the message's own id, when no =rid was
-- asked (as STAGE's stage/lua.cpp); a handler that returns nothing answers nothing. The
-- guard: an answer is never answered automatically, so two "ping" handlers that answer
-- everything stop after one round trip (logged) instead of running for ever.
stage.spawn("svc", function ()
  stage.waitfor("add", function (a, b) return a + b end)
  stage.waitfor("ping", function (n) return n + 1 end)
  stage.waitfor("quiet", function () end)
  stage.waitfor("calc.", function (v) return "group " .. _WAITFOR[0] .. " " .. v end)
end)
stage.waitfor("add", function (sum) print("add answered", sum) end)
local pings = 0
stage.waitfor("ping", function (n)
  pings = pings + 1
  print("ping answered", n)
  return n + 1 -- an answer to an answer: not sent back
end)
stage.waitfor("quiet", function (...) print("quiet answered?", ...) end)
stage.waitfor("calc.", function (v) print("calc answered", _WAITFOR[0], v) end)
stage.waitfor("self", function (v) print("self", v); return "not to itself" end)
stage.signal("self", "once") -- first: the answers from svc race with what follows
stage.signal("svc:add", 2, 40)
stage.signal("svc:ping", 1)
stage.signal("svc:quiet")
stage.signal("svc:calc.mul", 6)
stage.addtask(300, function () print("pings seen", pings) end)
