-- stage.load picks up an edited file; +name picks a field; stage.require does not reload;
-- stage.call runs a function or a "file+name".
os.execute("mkdir -p build/pkgtest")
local function write(s) local f = assert(io.open("build/pkgtest/mod.lua", "w")); f:write(s); f:close() end
write("return { v = 1, add = function (a, b) return a + b end }")
local m, info = stage.load("mod", function (v, i) return v, i end)
print("v", m.v, info[1], info[2])
print("field", (stage.load("mod+v")))
print("require", stage.require("mod").v)
write("return { v = 22, add = function (a, b) return a * b end }")  -- a new size
print("reloaded v", stage.load("mod").v, "required v", stage.require("mod").v)
stage.load("mod+v", function (v, i) print("callback", v, i[2]) end)
print("call", stage.call("mod+add", { 6 }, 7), stage.call(function (...) return select("#", ...) end, { 1, 2 }, 3))
print("missing, no callback", select("#", stage.load("nosuch")))
