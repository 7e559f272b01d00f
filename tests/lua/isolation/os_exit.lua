-- os.exit in an actor, a job and a spawned actor is an error that names stage.exit; the
-- node goes on (before: the node exited at once with the script's status).
stage.spawn("quitter", function ()
  stage.waitfor("quit", function () os.exit(7) end)
end)
stage.waitfor("answer", function (v, err) print("quitter:", v, err) end)
stage.signal("quitter:quit=answer")
stage.submit(0, function () os.exit(9) end)
local ok, err = pcall(os.exit, 3)
print("main:", ok, err)
stage.addtask(200, function () print("node still runs") end)
