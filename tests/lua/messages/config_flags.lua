-- A --config file is equivalent to the flags (config_flags.lua runs with the flags).
local got = 0
stage.waitfor("pong", function (name)
  got = got + 1
  if got == 3 then print("node", process.name, "answers", got) end
end)
print("echo", stage.signal("*echo:ping=pong"), "solo", stage.signal("solo:ping=pong"))
