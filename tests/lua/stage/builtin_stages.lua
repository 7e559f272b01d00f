-- STAGE's built-in stages are all served: route, ticket and index start on first use at
-- their home (docs/stages.md), curl sends an HTTP request (a bad URL answers the handler
-- with an error); none returns 0 and vanishes. A stage of one of those names that a script
-- spawned takes the messages instead, as any stage.
for _, target in ipairs({"route:@", "ticket:odbc=login_query", "index:callback"}) do
  local ok, n = pcall(stage.signal, target, {})
  print(target, ok, n)
end
stage.spawn("curl", function () stage.waitfor("get", function (v) return "got " .. v end) end)
stage.waitfor("get", function (v) print("own curl answered", v) end)
print(stage.signal("curl:get", "k"))
