-- _SANDBOX names the policy wherever STAGE's documents use it: the main chunk, a preload
-- file (see .flags), a coroutine, a stage.submit job, a thread.new function.
print("main", table.concat(_SANDBOX[""], ","), PRE)
coroutine.wrap(function ()
  _SANDBOX[""] = { "CO" }
  CO = "from coroutine"
end)()
print("after coroutine", table.concat(_SANDBOX[""], ","), CO)
stage.waitfor("job", function (...) print("job", ...) end)
stage.submit(0, function ()
  _SANDBOX[""] = { "*K" }
  K = "k"
  stage.signal("job", table.concat(_SANDBOX[""], ","), PRE, _SANDBOX["*K"])
end)
