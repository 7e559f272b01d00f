-- stage.addtask: a timer re-armed 100 times by its return value, then cancelled; a timer
-- that errors is not re-armed; a cancelled timer never runs.
local n, failing = 0, 0
local t
t = stage.addtask(1, function (step)
  n = n + 1
  if n == 100 then
    stage.addtask(t, nil)
    stage.addtask(20, function ()  -- after the last run: nothing more may come
      print("re-armed runs", n)
      print("failing timer runs", failing)
    end)
  end
  return step
end, 1)
stage.addtask(1, function () failing = failing + 1; error("timer boom") end)
local never = stage.addtask(5, function () print("cancelled timer ran") end)
stage.addtask(never, nil)
