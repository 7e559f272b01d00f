-- STAGE's timeout/cancel idiom (bin/package/test_waitfor.lua): a request whose handler
-- returns nothing gets no reply (stage/lua.cpp: `if (nret == 0);`), so the task that
-- cancels it fires and calls the waiting handler with stage.call(f, args, "CANCEL");
-- _WAITFOR, nil outside message handlers, tells the message from the cancel.
stage.spawn("svc", function ()
  stage.waitfor("quiet", function (v) end) -- answers nothing
  stage.waitfor("loud", function (v) return v .. "!" end)
end)
local function request(what, ms)
  local id = stage.waitfor(function (udata, v)
    print("CALLBACK", _WAITFOR and "message" or "<none>", udata, v)
    if _WAITFOR ~= nil then stage.waitfor(_WAITFOR[-1], nil) end
  end, what)
  stage.addtask(ms, function (v)
    local f, args = stage.waitfor(v)
    print("CANCEL?", what, f ~= nil)
    if f ~= nil then
      stage.call(f, args, "CANCEL")
      stage.waitfor(v, nil)
    end
    if what == "loud" then -- the last task: _WAITFOR in a job and in a thread callback
      thread.new(function () return tostring(_WAITFOR) end).waitfor(function (j)
        print("in a job", j, "in a thread callback", _WAITFOR)
      end)
    end
  end, id)
  stage.signal("svc:" .. what .. "=" .. id, what)
end
request("quiet", 200)
request("loud", 300)
print("top level", _WAITFOR)
stage.call(function () print("in stage.call", _WAITFOR) end)
