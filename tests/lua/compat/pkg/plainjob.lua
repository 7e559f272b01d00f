-- a script stage.submit runs by name; its value is not a function (submit.lua)
stage.signal("main:got", "plain script")
return 0
