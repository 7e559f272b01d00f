-- broker, logger and bundle are opened at their first use, not in every new state (issue 17:
-- spawn time and memory per actor). What a script sees is the same library: the global is
-- one table all along (a local copy, require and pairs see it filled), a field set before
-- the first use stays, and broker.submit wraps the stage.submit the state started with, even
-- when a script replaced it first.
local b, l = bundle, logger
print("require", require("logger") == logger, require("bundle") == bundle)
local names = {}
for k in pairs(b) do names[#names + 1] = k end
table.sort(names)
print("bundle", table.concat(names, " "), b == bundle, type(bundle.random))
logger.extra = 1
print("logger", l == logger, logger.extra, type(logger.info), getmetatable(logger))
local real_submit = stage.submit
stage.submit = function () error("not the state's stage.submit") end
local names2 = {}
for k in pairs(broker) do names2[#names2 + 1] = k end
table.sort(names2)
print("broker", table.concat(names2, " "))
stage.submit = real_submit
-- math and utf8 likewise (Lua's own: package.loaded holds the global's table from the start)
local m, u = math, utf8
print("math", rawget(m, "pi"), require("math") == m, package.loaded.utf8 == u, getmetatable(u) ~= nil)
print("math", m.floor(2.5), math.type(1), math.type(1.0), math.type("1"), m == math, rawget(m, "pi") ~= nil)
local nu = 0
for _ in pairs(u) do nu = nu + 1 end
print("utf8", nu, getmetatable(u), u.char(72, 105), require("utf8") == utf8)
stage.spawn("child", function ()
  local first = logger -- in another actor: its own library, opened there
  print("child", first == logger, type(logger.warn), type(broker.join), type(bundle.json),
        rawget(math, "pi"), math.pi ~= nil)
end)
