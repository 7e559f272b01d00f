-- A STAGE stage.json starts a node: "lua.so+stage" x2 runs pkg/start.lua as two actors of
-- stage "stage"; what has no meaning here is named in a warning at start-up.
local got = 0
stage.waitfor("pong", function (pre, pkg, script)
  got = got + 1
  if got == 2 then print("pong", pre, pkg, script) end
end)
print("sent", stage.signal("*stage:ping=pong"))
