-- a script stage.submit runs by name (submit.lua)
return {
  run = function (a, b) stage.signal("main:got", "script+name", a, b) end,
}
