-- stage.signal(nil, ...) in the handler of a message that asked for no reply (no =rid)
-- answers the sending actor under the message's own id, as STAGE does; the handler's
-- return values then are not sent as a second answer.
stage.spawn("svc", function ()
  stage.waitfor("hello", function (v)
    stage.signal(nil, "hi " .. v)
    return "not sent: already answered"
  end)
end)
stage.waitfor("hello", function (v) print("answered", v) end)
stage.waitfor("mine", function () print(pcall(stage.signal, nil, 1)) end)
stage.signal("mine")
stage.signal("svc:hello", "main")
