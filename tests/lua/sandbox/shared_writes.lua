-- Writes from a coroutine to a policy name reach the creator, live, both ways;
-- other names stay private.
_ENV[""] = { "SHARED" }
SHARED, PRIVATE = 0, 0
local co = coroutine.wrap(function ()
  for i = 1, 3 do
    SHARED = SHARED + 1
    PRIVATE = PRIVATE + 1
    print("co", SHARED, PRIVATE)
    coroutine.yield()
  end
end)
for i = 1, 3 do
  co()
  SHARED = SHARED * 10
  print("main", SHARED, PRIVATE)
end
