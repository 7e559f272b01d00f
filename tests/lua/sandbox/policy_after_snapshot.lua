-- A name added to the policy later becomes live even in a running coroutine.
L = "main-1"
local co = coroutine.wrap(function ()
  print("co", L)
  L = "co-private"
  coroutine.yield()
  print("co", L)
  L = "co-shared"
end)
co()
_ENV[""] = { "L" }
L = "main-2"
co()
print("main", L)
