-- The snapshot is taken at the first resume, not at create; later changes are not seen.
V, W = "at-create", "w0"
local co = coroutine.create(function ()
  print("first", V)
  coroutine.yield()
  print("second", V, W)   -- W was never read before main changed it
end)
V = "before-first-resume"
coroutine.resume(co)
V, W = "after", "w1"
NEW = "new"
coroutine.resume(co)
local co2 = coroutine.wrap(function () print("co2", V, W, NEW) end)
co2()
