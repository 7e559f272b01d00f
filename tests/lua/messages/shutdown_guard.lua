-- issue 12: shutdown is bounded. A job that never ends (here: a loop with no CPU budget;
-- before, also a finalizer, which scripts can no longer make) held the node forever when it
-- stopped, since the workers finish what they run. Past --set shutdown the node logs and
-- exits with the status it would have had.
stage.submit(0, function () while true do end end)
print("main ran")
stage.exit()
