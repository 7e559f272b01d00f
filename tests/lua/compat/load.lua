-- stage.load as STAGE has it (stage/lua.cpp __load): the value alone without a callback;
-- with one, what the callback returns; info = {0-based depth, path, mtime}; a missing file
-- calls cb(nil, {name, id}); "a.b" is a/b.lua.
os.execute("mkdir -p build/compat-a build/compat-b/grp")
local function write(p, s) local f = assert(io.open(p, "w")); f:write(s); f:close() end
write("build/compat-b/grp/mod.lua", "return { v = 7, twice = function (x) return 2 * x end }")
print("values", select("#", stage.load("grp.mod")))
print("field", stage.load("grp.mod+v"))
local r1, r2 = stage.load("grp.mod+twice", function (f, i)
  print("info", i[1], i[2], math.type(i[3]), i[3] == math.floor(i[3]), i.position)
  return f(21), "second"
end)
print("returns", r1, r2)
print("missing", stage.load("no.such+fn", function (v, i) return v, i[1], i[2] end))
print("missing plain", stage.load("nosuch", function (v, i) return v, i[1], i[2] end))
print("colon", stage.load("grp:mod").v)
print("require", stage.require("grp.mod+v", function (v, i) return v + 1 end))
print("missing, no callback", select("#", stage.load("nosuch")))
