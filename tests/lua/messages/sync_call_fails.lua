-- A synchronous ":msg" call whose handler fails, caught with pcall inside another handler:
-- the error travels unchanged, and afterwards _WAITFOR and stage.signal(nil, ...) describe
-- the outer message again, not the inner one (issue 11: they pointed at a dead C frame).
stage.spawn("svc", function ()
  stage.waitfor("inner", function (how)
    local seen = _WAITFOR[0] .. " " .. _WAITFOR[-1] -- cached in _WAITFOR, then the failure
    if how == "table" then error({code = 7, seen = seen}) end
    error("inner broke after " .. seen)
  end)
  stage.waitfor("fine", function (a) return a + 1, _WAITFOR[0] end)
  stage.waitfor("outer", function (x)
    local before = _WAITFOR[0]
    local ok, err = pcall(stage.signal, ":inner")
    local msg = type(err) == "string" and err:match("inner broke after .*$") or tostring(err)
    local tok, terr = pcall(stage.signal, ":inner", "table")
    local tv = type(terr) == "table" and terr.code .. " " .. terr.seen or tostring(terr)
    local ok2, n, fine = pcall(stage.signal, ":fine", 1)
    local w = _WAITFOR
    stage.signal(nil, before, ok, msg, tok, tv, ok2, n, fine, w[0], w[-1], w[1].stage,
                 w[2] and w[2].id, x)
  end)
end)
stage.waitfor("result", function (...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  print(table.concat(parts, " | "))
end)
stage.signal("svc:outer=result", "x1")
