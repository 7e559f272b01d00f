-- A policy name read and written from nested coroutines is the live value at every depth,
-- also when a coroutine's globals carry a script's metatable (whose __index then answers
-- for the name while it is nil), and a private name stays private at each level.
_ENV[""] = { "N" }
N, P = 1, "main"
local deep = coroutine.wrap(function ()
  coroutine.wrap(function ()
    coroutine.wrap(function ()
      N = N + 1
      P = "deep"
      print("level 3", N, P)
    end)()
    print("level 2", N, P)
  end)()
end)
deep()
print("main", N, P)
local outer = coroutine.wrap(function ()
  setmetatable(_ENV, { __index = function (t, k) return "mt:" .. k end })
  local inner = coroutine.wrap(function ()
    N = N + 10
    print("inner", N, MISSING)
    coroutine.yield()
    print("inner again", N)
  end)
  inner()
  print("outer", N)
  N = N + 100
  inner()
  N = nil
  print("outer nil", N)
end)
outer()
print("main", N)
