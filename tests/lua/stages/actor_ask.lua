-- STAGE's bin/package/test_actor.lua, then an ask nobody answers in time.
local v = stage.actor("callback", function (r)
  print("RETURN", self, r and r or "<cancel>")
end)

stage.waitfor("callback", function (r)
  print("CALLBACK",  r)
  return "HELLO"
end)

print(v)
v:callback({}, "HI")

local late = stage.actor("nobody", function(tag, r) print("LATE", tag, r) end, 50)
print(late:nobody({"t1"}, 1)) -- no handler: the callback gets the error reply, once
