-- STAGE's own bin/conf/stage.json (datumflux/platform, commit 190cdf6), copied as
-- stage_bin/stage.json with one change: its folders ("preload", "package", "rollback",
-- "[0]lib", "[0]") are prefixed with tests/lua/compat/stage_bin/, as STAGE runs from bin/
-- and the tests from the repository's root. stage_bin/rollback/start.lua is STAGE's
-- bin/rollback/start.lua: "start" is found there, as in STAGE (there is no
-- bin/package/start.lua). The file's "#cluster": [ 9801 ] is not opened without CurveZMQ
-- keys: the node runs alone and says so in one warning (docs/node.md); every other key it
-- ignores is named. This script runs as actor main beside stage "stage" and serves a
-- message; its lines go to stderr, as their order against ROLLBACK is the scheduler's.
stage.waitfor("echo", function (v) io.stderr:write("main served ", v, "\n") end)
io.stderr:write("to main ", stage.signal("main:echo", "hello"), "\n")
io.stderr:write("to stage ", stage.signal("stage:nothing"), "\n")
