-- STAGE opens broker, odbc, logger and bundle with luaL_requiref and puts stage in
-- package.loaded (stage/lua.cpp), so its samples say `local broker = require('broker')`.
-- Each returns the global's table, in the main script, a coroutine and a job.
local names = {"broker", "odbc", "logger", "bundle", "stage"}
local function check(where)
  local t = {}
  for _, n in ipairs(names) do t[#t + 1] = n .. "=" .. tostring(require(n) == _G[n]) end
  print(where, table.concat(t, " "))
end
check("main")
print("opened", type(require("broker").ready), type(require("odbc").new))
coroutine.wrap(check)("coroutine")
stage.submit(1, check, "job")
