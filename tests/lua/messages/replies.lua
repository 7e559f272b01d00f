-- A reply round trip: the handler's return values, or stage.signal(nil, ...); _WAITFOR.
stage.spawn("calc", function ()
  stage.waitfor("add", function (a, b) return a + b end)
  stage.waitfor("explicit", function (a)
    local w = _WAITFOR
    stage.signal(nil, "explicit", a * 10, w[0], w[-1], w[1].stage, w[2].id)
    return "ignored: already answered"
  end)
  stage.waitfor("fails", function () error("calc broke") end)
  stage.waitfor("next", function () return "still serving" end)
end)
local n = 0
local lines = {}
stage.waitfor("result", function (...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  lines[#lines + 1] = table.concat(parts, " ")
  n = n + 1
  if n == 4 then
    table.sort(lines)
    for _, l in ipairs(lines) do print(l) end
    print("no reply asked:", pcall(stage.signal, nil, 1))
  end
end)
stage.signal("calc:add=result", 2, 40)
stage.signal("calc:explicit=result", 7)
stage.signal("calc:fails=result")
stage.signal("calc:next=result")
