-- The tour's pinger: every second, asks one echo actor anywhere in the cluster.
stage.waitfor("pong", function (answer, err)
  print(answer or ("no answer: " .. tostring(err)))
end)
stage.addtask(1000, function ()
  stage.signal("echo:ping=pong", process.name)
  return 1000
end)
