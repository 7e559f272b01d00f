-- The odbc library is compiled at its first use, not in every new state (issue 17: spawn
-- time and memory per actor). What a script sees is the same: the three functions are
-- there for pairs, and the library keeps the globals the state started with, even when a
-- script replaced them before its first use.
local names = {}
for k in pairs(odbc) do names[#names + 1] = k end
table.sort(names)
print(table.concat(names, " "))
odbc.extra = 1
print("extra", odbc.extra, type(odbc.cache))
coroutine, pcall = nil, nil -- and left so: the function below runs after this chunk
odbc.new("DRIVER=SQLite3;Database=:memory:", function (adp)
  print("sum", adp.execute("SELECT 1 + 2 AS sum").fetch().sum)
end)
