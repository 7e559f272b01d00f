-- STAGE's preload files (bin/preload/ of datumflux/platform: actor.lua, debug.lua,
-- import.lua, print_r.lua, stage.lua), ported into samples/preload/ (changes are named at
-- the top of each), used as STAGE's scripts use them. stacktrace.lua is not ported: it
-- loads STAGE's lib/stacktrace.lua, a third-party library rather than part of STAGE.
-- print_r: one line per field, tab-indented by depth, and an empty line at the end.
print_r({ x = { y = 2 } })
print_r("text")

-- import: no package file "string" or "logger", so require's value (and its field).
print("import", import("string+format") == string.format, import("logger") == logger)

-- stage.lua: the bundle's functions are stage's too.
print("stage.proxy", stage.proxy == bundle.proxy, stage.json == bundle.json)

-- string:dump() writes a hex dump through io.write.
io.write("dump\n");
("AB\n"):dump()
io.flush()

-- stage.actor: the answer reaches cb with the extra argument first; without an answer,
-- cb gets only the extra argument after the timeout.
stage.waitfor("echo", function (v) return "pong", v end)
stage.waitfor("silent", function () end)
local a = stage.actor("echo", function (...) print("actor", ...) end, 100)
a:echo("udata", 7)
local s = stage.actor("silent", function (...) print("cancelled", ...) end, 100)
s:silent("udata2", 8)
