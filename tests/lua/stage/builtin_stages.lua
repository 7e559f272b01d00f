-- STAGE's built-in stages: route, ticket and index start on first use at their home
-- (docs/stages.md), so a message to one is taken; curl is not built yet: a message to it,
-- with no actor of that name, raises instead of returning 0 and vanishing. A stage of that
-- name that a script spawned takes the message as any stage.
for _, target in ipairs({"route:@", "ticket:odbc=login_query", "curl:callback"}) do
  local ok, err = pcall(stage.signal, target, {})
  print(target, ok, err)
end
stage.spawn("curl", function () stage.waitfor("get", function (v) return "got " .. v end) end)
stage.waitfor("get", function (v) print("own curl answered", v) end)
print(stage.signal("curl:get", "k"))
