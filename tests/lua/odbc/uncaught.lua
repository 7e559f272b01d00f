-- An error nothing catches in odbc.new's function, after it waited for the database, is
-- logged with where it happened in the script; the actor goes on.
odbc.new("DRIVER=SQLite3;Database=:memory:", function (adp)
  adp.execute("SELECT 1")
  local t = nil
  return t.field -- line 6
end)
stage.addtask(300, function () print("still serving") end)
