-- An error object whose __tostring loops (or errors) is reported under the same budget.
stage.spawn("evil", function ()
  stage.waitfor("loop", function ()
    error(setmetatable({}, { __tostring = function () while true do end end }))
  end)
  stage.waitfor("raise", function ()
    error(setmetatable({}, { __tostring = function () error("tostring fails too") end }))
  end)
  stage.waitfor("ping", function () return "pong" end)
end)
local n = 0
stage.waitfor("answer", function (v, err)
  n = n + 1
  print(n, v, err)
end)
stage.signal("evil:loop=answer")
stage.signal("evil:raise=answer")
stage.signal("evil:ping=answer")
