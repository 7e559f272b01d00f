-- STAGE's built-in stages (route, ticket, index) are not built yet: a message to
-- one, with no actor of that name, raises instead of returning 0 and vanishing. A stage
-- of that name that a script spawned takes the message as any stage.
for _, target in ipairs({"route:@", "ticket:odbc=login_query", "index:callback"}) do
  local ok, err = pcall(stage.signal, target, {})
  print(ok, err)
end
stage.spawn("index", function () stage.waitfor("get", function (v) return "got " .. v end) end)
stage.waitfor("get", function (v) print("own index answered", v) end)
print(stage.signal("index:get", "k"))
