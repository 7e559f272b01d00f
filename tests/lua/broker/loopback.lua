-- broker through the real binary, no outside client: a listener on port 0, a join to it,
-- framed messages both ways, user fields, close callbacks with their reasons, then the
-- node ends by itself once every socket is closed.
local accepted, connected   -- which comes first depends on the kernel: printed later
local listener = broker.ready("tcp://127.0.0.1:0?packet=1k:1k", function (s, addr)
  accepted = broker.ntoa(addr):match("^127%.0%.0%.1:%d+$") ~= nil
  s.close = function (s, err, why) print("server side closed:", why) end
  s.count = 0                                  -- a user field
  s.commit = 20                                -- batched: written every 20 ms
  return function (s, data)
    s.count = s.count + 1
    if data == "two" then
      broker.signal(s.id, "injected")            -- arrives here as if the client sent it
      broker.submit(s, function (sock, word)     -- a job, keyed by the socket
        sock.commit("from a job: " .. word)
      end, "hi")
    end
    if data == "bye" then
      s.commit("count " .. s.count)
      return
    end
    return "re:" .. data                       -- returned values are committed
  end
end)
print("listener", type(listener), tostring(listener):match("^broker: %d+$") ~= nil)
local port = broker.ntoa(listener[-1], {}).port
print("bound port > 0", port > 0)
print("id is [0]", listener.id == listener[0], broker.f(listener.id) == listener)

local c = broker.join("tcp://127.0.0.1:" .. port .. "?packet", function (s)
  connected = true
  s.commit("one")
  s.commit("two")
  local got = {}     -- the job's commit and the actor's race: compared sorted
  return function (s, data)
    if not data:match("^count") then
      got[#got + 1] = data
      if #got == 4 then
        table.sort(got)
        for _, g in ipairs(got) do print("client got", g) end
        s.commit("bye")
      end
      return
    end
    print("client got", data)
    if data:match("^count") then
      print("accepted from 127.0.0.1", accepted, "connected", connected)
      s.close()
      broker.close(listener)
    end
  end
end)
c.close = function (s, err, why) print("client side closed:", why, s.errno) end
