-- The snapshot is shallow: a table value is the same table on both sides.
T = { n = 1 }
local co = coroutine.wrap(function ()
  T.n = T.n + 1            -- mutates the one shared table
  local mine = T
  T = { n = 100 }          -- rebinding the name is private
  coroutine.yield(mine)
  print("co", T.n)
end)
local seen = co()
print("same table", seen == T, T.n)
co()
print("main", T.n)
