-- debug.sethook cannot clear the governor's hook, and debug.gethook does not show it; a
-- loop after the attempt is still stopped by the budget (before: a 4 s loop ran on).
print(debug.gethook())
print(pcall(debug.sethook))
print(pcall(debug.sethook, function () end, "l"))
print(pcall(debug.sethook, coroutine.create(print), function () end, "c"))
stage.spawn("escape", function ()
  stage.waitfor("run", function ()
    pcall(debug.sethook)
    local t = os.clock()
    while os.clock() - t < 4 do end
    return "escaped"
  end)
end)
stage.waitfor("answer", function (v, err) print("escape:", v, err) end)
stage.signal("escape:run=answer")
