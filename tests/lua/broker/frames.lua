-- The frames of one read (one send of the client's commits) reach receive one at a time, in
-- order: a frame whose callback raises, or returns what cannot be sent, costs only that frame
-- (the frames after it are still served), and a callback that replaces s.receive takes effect
-- from the next frame of the same read.
local listener = broker.ready("tcp://127.0.0.1:0?packet=1k:1k", function (s)
  return function (s, data)
    if data == "raise" then error("receive raised on purpose") end
    if data == "bad" then return print end   -- a function cannot be committed
    if data == "switch" then
      s.receive = function (s, d) return "new:" .. d end
      return "switched"
    end
    return "old:" .. data
  end
end)
local port = broker.ntoa(listener[-1], {}).port
local frames = {"a", "raise", "b", "bad", "c", "switch", "d", "e"}
local want, got = 6, {}
broker.join("tcp://127.0.0.1:" .. port .. "?packet", function (s)
  for _, f in ipairs(frames) do s.commit(f) end   -- one handler turn: one write
  return function (s, data)
    got[#got + 1] = data
    if #got == want then
      print(table.concat(got, " "))
      s.close()
      broker.close(listener)
    end
  end
end)
