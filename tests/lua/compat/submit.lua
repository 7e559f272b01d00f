-- stage.submit forms of STAGE (stage/lua.cpp __submit): no key, a script name (with or
-- without a key), and here a string key too (same string, jobs never overlap).
local seen, want = {}, 5
stage.waitfor("got", function (what, a, b)
  seen[#seen + 1] = table.concat({ what, tostring(a), tostring(b) }, " ")
  if #seen == want then
    table.sort(seen)
    for _, s in ipairs(seen) do print(s) end
  end
end)
stage.submit(function (x) stage.signal("main:got", "no key", x) end, 1)
stage.submit("user-1", function (x) stage.signal("main:got", "string key", x) end, 2)
stage.submit("job+run", 3, 4)
stage.submit(7, "job+run", 5, 6)
stage.submit("plainjob")
print(pcall(stage.submit, true, function () end))
