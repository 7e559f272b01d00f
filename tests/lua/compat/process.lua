-- process and thread as STAGE's PROCESS_luaObject / THREAD_luaHelper (stage/lua.cpp):
-- tick is utimeNow()/1000 (epoch seconds), "%NAME" the environment, "$" the settings,
-- title renames the process, stage is a number.
local now = os.time()
print("tick", math.abs(process.tick - now) < 5, math.abs(thread.tick - now) < 5)
print("env", process["%SN_COMPAT_VAR"], process["%SN_COMPAT_NO_SUCH_VAR"])
print("config", process["$%package"][1], type(process["$"]), process["$no such key"])
process.title = "sn-compat-title"
print("title", process.title)
print("stage", math.type(process.stage))
process.anything = 1
print("dropped", process.anything)
print(pcall(function () process["%SN_COMPAT_VAR"] = "x" end))
thread.new(function () return thread.tick end).waitfor(function (t)
  print("thread tick", math.abs(t - os.time()) < 5)
end)
