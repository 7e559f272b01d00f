-- A coroutine body that has its own environment keeps it: load's env argument, or a
-- local _ENV it closes over. It is not handed the real globals.
x = "global x"
print(coroutine.wrap(load("return x", "c", "t", { x = "env x" }))())
print(coroutine.wrap(load("return print", "c", "t", {}))())
local function restricted()
  local _ENV = { x = "local env x" }
  return function () return x, print end
end
print(coroutine.wrap(restricted())())
local co = coroutine.create(load("y = 1 coroutine.yield(y) return y + 1", "c", "t",
                                 { coroutine = coroutine }))
print(coroutine.resume(co))
print(coroutine.resume(co))
print(y)
-- an ordinary body still runs on its snapshot of the globals
print(coroutine.wrap(function () return x end)())
