-- debug.gethook never shows the governor's hook, whatever the script tried.
print(debug.gethook())
print(pcall(debug.sethook, function () end, "l"))
print(pcall(debug.sethook))
print(debug.gethook())
print(coroutine.wrap(function () return debug.gethook() end)())
print(debug.gethook(coroutine.create(print)))
