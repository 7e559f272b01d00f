-- STAGE's sample bin/package/test_waitfor.lua (datumflux/platform), ported: its code is
-- unchanged up to its actor() part, left out: there `actor "request" function ... end`
-- calls the proxy with a function, which returns the plain table (STAGE's __call, and
-- bundle.proxy's), so `actor.ask "value"` raises (a nil field) in STAGE too, and the
-- error would end this main chunk before its timers print. Two changes
-- around it keep the output stable: the generated id prints as <id>, and the lines print
-- sorted at the end (the thread's RESULT races with the messages).
local lines = {}
local function print(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  lines[#lines + 1] = (table.concat(t, "\t"):gsub("waitfor#%d+", "<id>"))
end
stage.addtask(1500, function ()
  table.sort(lines)
  for _, l in ipairs(lines) do _G.print(l) end
end)

thread.new(function ()
	return "HELLO"
end).waitfor(function (r)
	print("RESULT", r)
end)

stage.waitfor("callback", function (v)
	print("CALLBACK", v, _WAITFOR[-1])
end)
stage.signal("callback", "TEST")

local id = stage.waitfor(function (udata, v)
	print("CALLBACK", _WAITFOR and _WAITFOR[0] or "<none>", udata, v)
	if (_WAITFOR ~= nil) and (_WAITFOR[0] == _WAITFOR[-1]) then
		stage.waitfor(_WAITFOR[-1], nil)
	end
end, "USERDATA")

-- print("WAITFOR", id)
stage.addtask(1000, function (v)
	local f, args = stage.waitfor(v)
	print("CANCEL", v, f, args)
	if f ~= nil then
		stage.call(f, args, "CANCEL")
		stage.waitfor(v, nil)
	end
	return -1
end, id)

stage.signal(id, "HELLO")
