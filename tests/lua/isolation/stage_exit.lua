-- stage.exit() stops the node in order, as SIGTERM does: the handler finishes, timers
-- still armed never fire, and the exit status is 0.
stage.spawn("admin", function ()
  stage.waitfor("shutdown", function ()
    stage.exit()
    print("the handler goes on after stage.exit")
  end)
end)
stage.addtask(10, function () stage.signal("admin:shutdown") end)
stage.addtask(30000, function () print("never: the node stopped") end)
