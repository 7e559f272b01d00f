-- A coroutine created inside a coroutine snapshots its creator's environment.
A = "main"
local outer = coroutine.create(function ()
  A = "outer"          -- private to outer
  B = "outer-only"
  local inner = coroutine.create(function ()
    print("inner sees", A, B)
    A = "inner"
    coroutine.yield()
    print("inner still", A, B)
  end)
  coroutine.resume(inner)
  B = "outer-changed"  -- after inner's snapshot: inner must not see it
  coroutine.resume(inner)
  print("outer sees", A, B)
end)
coroutine.resume(outer)
print("main sees", A, B)
