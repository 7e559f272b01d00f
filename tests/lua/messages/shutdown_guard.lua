-- issue 12: shutdown is bounded. A job that never ends (here: a loop with no CPU budget;
-- before, also a finalizer, which scripts can no longer make) held the node forever when it
-- stopped, since the workers finish what they run. Past --set shutdown the node logs and
-- exits with the status it would have had. The node stops only once the job is running: a
-- job still queued when the node stops is never started, and nothing would hold it.
stage.waitfor("started", function ()
  print("job running")
  stage.exit()
end)
stage.submit(0, function ()
  stage.signal("main:started")
  while true do end
end)
print("main ran")
