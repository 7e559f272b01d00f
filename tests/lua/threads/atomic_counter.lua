-- 4 jobs x 5,000 __ increments of one starred counter give exactly 20,000.
_ENV[""] = { "*COUNT", "*DONE" }
COUNT, DONE = 0, 0
for j = 1, 4 do
  stage.submit(0, function ()
    for i = 1, 5000 do __("COUNT", function (v) return v + 1 end) end
    __.DONE = function (d) return d + 1 end
  end)
end
stage.submit(0, function ()   -- polls until the four are done, then stops re-running
  if DONE < 4 then return 5 end
  print("COUNT", COUNT)
end)
