-- A timer armed from thread code (thread.new, stage.submit) is its actor's, as in STAGE
-- (the task joins the stage's queue): it runs in the actor, after the delay, re-armed by
-- its result; a job may not cancel it.
thread.new(function ()
  local t = stage.addtask(300, function (who)
    COUNT = (COUNT or 0) + 1
    print("timer from thread", who, COUNT)
    if COUNT < 2 then return 5 end
  end, "thread")
  return type(t), type(t.id), (pcall(stage.addtask, t, nil))
end).waitfor(function (...)
  print("thread returned", ...)
  stage.submit(0, function ()
    stage.addtask(function () print("timer from submit") end)
  end)
end)
