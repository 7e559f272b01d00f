-- A table grown without bound hits the actor's memory cap: a Lua memory error in that
-- actor; the actor serves its next message; other actors and the node go on.
stage.spawn("hog", function ()
  stage.waitfor("grow", function ()
    local t = {}
    for i = 1, math.huge do t[i] = ("x"):rep(100) .. i end
  end)
  stage.waitfor("small", function () local t = {} for i = 1, 1000 do t[i] = i end return #t end)
end)
local got = {}
stage.waitfor("answer", function (v, err)
  got[#got + 1] = tostring(v) .. " " .. tostring(err)
  if #got == 3 then for _, g in ipairs(got) do print(g) end end
end)
stage.signal("hog:grow=answer")
stage.signal("hog:small=answer")
stage.signal("hog:grow=answer")
