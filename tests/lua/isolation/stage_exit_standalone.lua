-- stage.exit() in a standalone run (no listener): the node stops in order with status 0,
-- and the timer still armed never fires.
stage.spawn("admin", function ()
  stage.waitfor("shutdown", function ()
    stage.exit()
    print("the handler goes on after stage.exit")
  end)
end)
stage.addtask(10, function () stage.signal("admin:shutdown") end)
stage.addtask(30000, function () print("never: the node stopped") end)
