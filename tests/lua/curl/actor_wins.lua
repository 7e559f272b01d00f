-- A node that runs actors of stage "curl" sends them "curl:ID" like any stage: the
-- built-in HTTP stage answers only where no such actor runs.
stage.spawn("curl", function ()
  stage.waitfor("x", function (v) return "the curl actor got " .. v end)
end)
stage.waitfor("ack", function (v) print(v) end)
print(stage.signal("curl:x=ack", "http://127.0.0.1:1/"))
