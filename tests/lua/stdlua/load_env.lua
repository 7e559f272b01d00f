-- A chunk loaded without an env of its own (load, loadfile, dofile, require) runs with the
-- globals of the code loading it: in a job the job's (before: the worker's global table,
-- shared by every actor's jobs, so a job's globals leaked into later jobs), in a coroutine
-- the coroutine's. An env given, even nil, is kept.
stage.waitfor("r", function (...) print(...) end)
stage.submit(1, function ()
  load("LEAK = 'job 1'")()
  package.path = "tests/lua/stdlua/load_env.d/?.lua"
  WHERE = "job 1"
  local m = require("mod")
  stage.signal("r", "job 1:", LEAK, load("return LEAK")(), m.where, MODVAR)
end)
stage.addtask(100, function ()
  stage.submit(1, function ()
    stage.signal("r", "job 2:", LEAK, load("return LEAK")(), MODVAR)
  end)
end)
X = "main"
print(coroutine.wrap(function ()
  X = "coroutine"
  return load("return X")(), dofile("tests/lua/stdlua/load_env.d/x.lua")
end)())
print(X)
print(pcall(load("return X", "c", "t", nil)))
print(load("return X", "c", "t", { X = "given" })())
