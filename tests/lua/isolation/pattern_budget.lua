-- A pathological pattern (exponential backtracking inside C) is stopped by the budget in
-- string.find, match, gmatch and gsub (before: 4.3 s of CPU for find alone).
local s, p = ("a"):rep(130), ("a*"):rep(4) .. "b"
local function try(name, f)
  local t = os.clock()
  local ok, err = pcall(f)
  print(name, ok, (tostring(err):match("budget exceeded") or err), os.clock() - t < 3)
end
stage.spawn("matcher", function ()
  stage.waitfor("find", function () return s:find(p) end)
  stage.waitfor("match", function () return s:match(p) end)
  stage.waitfor("gmatch", function () for x in s:gmatch(p) do end end)
  stage.waitfor("gsub", function () return (s:gsub(p, "x")) end)
  stage.waitfor("ok", function () return ("hello world"):find("o w"), ("key=val"):match("(%w+)=(%w+)") end)
end)
local n = 0
for _, m in ipairs({"find", "match", "gmatch", "gsub", "ok"}) do
  stage.waitfor("answer-" .. m, function (...) print(m, ...) end)
  stage.signal("matcher:" .. m .. "=answer-" .. m)
end
