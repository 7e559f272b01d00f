-- A timer handle works only for the actor that armed it: another actor cannot cancel it.
stage.spawn("victim", function ()
  local t = stage.addtask(100, function () print("victim's timer fired") end)
  stage.waitfor("id", function () return t.id end)
end)
stage.waitfor("got", function (id)
  stage.addtask({id = id}, nil)   -- not ours: nothing happens
  stage.addtask(id, nil)
  print("tried to cancel", type(id))
end)
stage.signal("victim:id=got")
