-- A built-in stage's home that dies is started afresh by the next message to it: the home
-- of 'index' made from builtin_restart.preload/builtin/index.stage fails at its first start;
-- the request sent to it then fails ("no route"), and the next request starts a new home,
-- which serves. (Before, the node's start marker stayed set: every later request waited
-- for a start that never came, 1 s each, and failed.)
local function first_failed(ok, err)
  -- the dead home's queued request is answered like a missing route, or the send finds no
  -- route at all when the home died before it was routed: either way, it fails
  print("first request fails:", ok == nil or ok == 0,
        type(err) == "string" and err:match("^no route") ~= nil)
end

stage.waitfor("second", function(r, err)
  print("second request:", r and r.KR1, err)
  stage.signal("index:g?board=third", "KR1")
end)
stage.waitfor("third", function(r, err)
  print("third request:", r and r.KR1 and r.KR1.I[1].i, err)
  stage.exit()
end)
stage.waitfor("first", function(r, err)
  first_failed(r, err)
  print("second send:", stage.signal("index:s?board=second", {KR1 = {i = 7}}))
end)

local rc, err = stage.signal("index:t?board=first", 0)
if rc == 0 then
  first_failed(rc, err)
  print("second send:", stage.signal("index:s?board=second", {KR1 = {i = 7}}))
end
