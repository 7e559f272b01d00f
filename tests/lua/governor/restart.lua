-- Restart policies: "always" runs the script again in a fresh state (here it fails only
-- the first time); with intensity 2 in 10 s an actor that always fails is given up on,
-- and messages to it are answered as no route.
stage.spawn("flaky", function ()
  COUNT = (COUNT or 0) + 1                      -- a fresh state: always 1
  if stage.once("flaky-first", function () end) then error("first run fails") end
  stage.waitfor("ping", function () return "flaky is up, COUNT " .. COUNT end)
end)
stage.spawn("broken", function () error("always fails") end)
local got = {}
stage.waitfor("answer", function (v, err)
  got[#got + 1] = tostring(v) .. " | " .. tostring(err)
  if #got == 2 then table.sort(got) print(got[1]) print(got[2]) end
end)
stage.addtask(100, function ()
  stage.signal("flaky:ping=answer")
  stage.signal("broken:ping=answer")
end)
