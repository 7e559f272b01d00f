-- A socket that commits often (its s.commit is then found without a call, through a metatable
-- of its own) keeps every other field, form and check of a socket object.
local listener = broker.ready("tcp://127.0.0.1:0?packet=1k:1k", function (s)
  s.seen = 0
  return function (s, data)
    s.seen = s.seen + 1
    s.commit("re:" .. data)          -- the first, second, third read of s.commit
    if s.seen == 3 then
      s:commit("method form")        -- s:commit(v) as well
      print("id", s.id == s[0], math.type(s.id), broker.f(s.id) == s)
      print("addresses", broker.ntoa(s[1]):match("^127%.0%.0%.1:%d+$") ~= nil,
            broker.ntoa(s[-1]):match("^127%.0%.0%.1:%d+$") ~= nil)
      print("fields", s.seen, s.nothing, s.errno, type(s.close))
      print("metatable", getmetatable(s), tostring(s):match("^broker: %d+$") ~= nil)
      print("id read-only", pcall(function () s.id = 1 end))
      s.commit = 0                   -- the commit interval, still a setting
      print("commit still a function", type(s.commit))
      broker.signal(s, "signalled")  -- a socket object is still taken where ids are
    end
    if data == "signalled" then
      s.commit("bye")
      broker.close(listener)
    end
  end
end)
local port = broker.ntoa(listener[-1], {}).port
broker.join("tcp://127.0.0.1:" .. port .. "?packet", function (s)
  s.commit("a")
  s.commit("b")
  s.commit("c")
  local got = {}
  return function (s, data)
    got[#got + 1] = data
    if data == "bye" then
      print(table.concat(got, " "))
      stage.exit()   -- the node ends here (the server side is still open)
    end
  end
end)
