-- Closures travel with their upvalues; cells shared between closures stay shared there.
-- The second job starts from the first one's callback: two jobs in flight at once may
-- answer in either order, and the expected output has one order.
local base, counter = 10, 0
local function add(x) counter = counter + 1; return base + x + counter end
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local to = thread.new(function (a) return add(a), add(a), counter end, 5)
to.waitfor(function (a, b, c)
  print(a, b, c, "main counter", counter)
  thread.new(function (...) return fib(20), select("#", ...) end, 1, nil, 3)
    .waitfor(function (f, n) print("fib", f, "varargs", n) end)
end)
