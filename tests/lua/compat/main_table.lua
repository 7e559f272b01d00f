-- A main script that returns a table has its functions registered as handlers of their
-- keys, as STAGE's boot does (stage/lua.cpp: registerCallback for each function).
stage.addtask(0, function ()
  stage.signal("main:hello", "from a timer")
  stage.signal("main:bye")
end)
return {
  hello = function (v) print("hello", v) end,
  bye = function () print("bye") end,
  note = "not a function: ignored",
}
