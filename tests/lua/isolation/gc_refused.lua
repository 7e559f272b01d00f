-- Lua 5.3 runs __gc with hooks off, so no budget can stop a finalizer: scripts cannot set
-- one (before: a looping finalizer held a worker for good and SIGTERM hung).
print(pcall(setmetatable, {}, {__gc = function () while true do end end}))
print(pcall(debug.setmetatable, {}, {__gc = function () while true do end end}))
local mt = {}
local t = setmetatable({}, mt)
mt.__gc = function () while true do end end   -- too late: Lua never marks t for finalization
t = nil
collectgarbage()
print((pcall(setmetatable, {}, {__index = {}, __mode = "k"})))
stage.submit(0, function ()
  local ok, err = pcall(setmetatable, {}, {__gc = print})
  print("job:", ok, err)
end)
