-- An actor of the tour: answers "ping" with the node it runs on.
stage.waitfor("ping", function (who)
  print("echo on " .. process.name .. " got ping from " .. tostring(who))
  return "pong from " .. process.name
end)
