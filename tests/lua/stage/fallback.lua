-- As STAGE: '?' separates like ':' and '.' (chat?user1 reaches "chat?"), every ':' after
-- the first separates, and a message no id matches goes to the handler "@".
local function on(id)
  stage.waitfor(id, function (v) print(id, _WAITFOR[0], _WAITFOR[-1], v) end)
end
on("chat?")
on("a:")
stage.signal("chat?user1", 1)
stage.signal("main:a:b:c", 2)
stage.signal("nothing.here", 3) -- no "@" yet: dropped (a debug log line)
stage.addtask(50, function ()
  on("@")
  stage.signal("nothing.here", 4)
  stage.signal("main:x:y", 5)
end)
