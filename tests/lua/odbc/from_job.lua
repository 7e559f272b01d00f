-- odbc in a job raises a clear error: the result could only come back to an actor.
stage.submit("k", function ()
  local ok, err = pcall(odbc.new, "DRIVER=SQLite3;Database=:memory:", function (adp)
    adp.execute("SELECT 1")
  end)
  print(ok, (tostring(err):gsub("^[^:]*:%d+: ", "")))
end)
