-- Bad use of odbc raises a clear error, and the actor goes on. No database server is
-- needed: a driver that is not installed fails to connect, and an in-memory SQLite
-- database (libsqlite3odbc) answers the rest.
local function try(f, ...)
  local ok, err = pcall(f, ...)
  print(ok, (tostring(err):gsub("^[^:]*:%d+: ", "")))
end
try(odbc.new)
try(odbc.new, 42)
try(odbc.new, {})
try(odbc.new, {DRIVER = "SQLite3", [".executeTimeout"] = "soon"})
try(odbc.new("DRIVER=SQLite3;Database=:memory:").execute, "SELECT 1")
odbc.new("DRIVER=SQLite3;Database=:memory:", function (adp)
  odbc.new("DRIVER=No Such Driver", function (none) -- nested: runs in this coroutine
    local ok, err = pcall(none.execute, "SELECT 1")
    print("no driver", ok, err:match("odbc: cannot connect") ~= nil)
  end)
  try(adp.execute, 42)
  try(adp.execute, "SELECT ?", {})
  try(adp.execute, "SELECT ?", print)
  local rs = adp.execute("SELECT ? AS a, ? AS b, ? AS c, ? AS d, ? AS e", 1, 2.5, "x", true, nil)
  local r = rs.fetch()
  print("types", math.type(r.a), r.a, r.b, r.c, r.d, r.e)
  try(rs.fetch, 42)
  try(adp.commit)
  try(adp.apply, {})
  try(function () return adp.execute("SELECT 1 AS x").fetch({"nope"}) end)
  print("nested returns", odbc.new("DRIVER=SQLite3;Database=:memory:", function (b)
    return b.execute("SELECT 6 AS six").fetch().six
  end))
  adp.close()
  try(adp.execute, "SELECT 1")
end)
