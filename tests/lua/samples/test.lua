-- STAGE's sample bin/package/test.lua (datumflux/platform), ported. The sample is a module
-- whose returned table registers the handler "hello"; nothing in it sends a message, so
-- two lines are added before it: a waitfor for the answer and a timer that asks "hello"
-- for one with "=answer". Expected: the handler's value "HELLO: " .. (1 + 2) as the answer.
stage.waitfor("answer", function (v) print("answer", v) end)
stage.addtask(0, function () stage.signal("main:hello=answer", 1, 2) end)
-- the sample, unchanged:
-- print("HELLO WORLD")
return {
	["hello"] = function (a, b)
		-- print("HELLO", socket, a, b)
		return "HELLO: " .. (a + b)
	end
}
