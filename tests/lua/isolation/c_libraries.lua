-- A script must not load native code: package.loadlib and require's C searchers would run
-- any .so, including one the script wrote itself with io.open.
local ok, err = pcall(package.loadlib, "libc.so.6", "*")
print("loadlib", ok, err)
print("searchers", #package.searchers, package.searchers[3], package.searchers[4])
print("cpath", package.cpath)
package.cpath = "/usr/lib/x86_64-linux-gnu/lib?.so.6;/lib/x86_64-linux-gnu/lib?.so.6"
local ok2, err2 = pcall(require, "c")
print("require c", ok2, (err2:match("^module 'c' not found") ~= nil),
      (err2:find("lib%?%.so") == nil))
-- Lua modules still load, from package.path
package.path = "./tests/lua/isolation/?.lua.txt"
print("require lua", pcall(require, "no_such_module") == false)
