-- STAGE's sample bin/package/test_broker.lua (datumflux/platform), ported. Changes:
-- 1. The listener's URI "tcp://[::]:8081?text=2k,4k" is "tcp://127.0.0.1:0": a free port
--    on loopback (tests run side by side), and no "?text": stage-node's broker has no
--    line framing (lua-api.md, "Differences from STAGE"). A raw tcp:// stream gives the
--    same events here: the client sends one short line and waits for the answer, so each
--    read is one line, "\n" included, as STAGE's "?text" frame is.
-- 2. Nothing in the sample connects; a loopback client is added after it (as
--    tests/lua/broker/loopback.lua does): it sends "hi\n", prints the answer, closes, and
--    closes the listener so that the node ends.
-- Expected, from STAGE's source (stage/lua/lbrokerlib.cpp): the accept callback returns
-- true, so the accepted socket keeps the listener's receive and close; RECEIVE and
-- CALLBACK print the line with its "\n" (an empty line after each); the receive's return
-- value "HELLO\n" is committed to the client; CLOSE names the accepted socket's id.
-- bundle.bson of {name = "HELLO"} is 21 bytes: 4 (length) + 1 (type) + 5 ("name\0") +
-- 4 (string length) + 6 ("HELLO\0") + 1 (end).
-- the sample:
local broker = require('broker')

local port = broker.ready("tcp://127.0.0.1:0", function (socket, addr)
	local broker = require('broker')

	print("ACCEPT", broker.ntoa(addr))
	return true
end)

port.expire = 10000
port.close = function (socket)
	print("CLOSE", socket.id)
end

stage.waitfor("callback", function (v)
	print("CALLBACK", v)
end)

port.receive = function (socket, data)
	print("RECEIVE", data)
	stage.signal("callback", data)
	return "HELLO\n"
end
print("BROKER SAMPLE")

local bundle = require('bundle')

local b = bundle.bson({
	name = "HELLO"
})
print("decode:", #b)
print("DECODE", bundle.bson(b).name)

--[[ stage.addtask(1000, function (a)
	print("TICK", a, process.tick)
end, "START") ]]
-- added (change 2): the client
broker.join("tcp://127.0.0.1:" .. broker.ntoa(port[-1], {}).port, function (s)
  s.commit("hi\n")
  return function (s, data)
    print("client got", data)
    s.close()
    broker.close(port)
  end
end)
