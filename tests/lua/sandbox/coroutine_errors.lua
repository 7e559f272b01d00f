-- An error inside a coroutine is returned by resume (or raised by wrap) and harms nothing.
Q = "main"
local co = coroutine.create(function ()
  Q = "co"
  error("boom")
end)
local ok, err = coroutine.resume(co)
print(ok, (err:gsub("^.-:%d+: ", "")), coroutine.status(co), Q)
local w = coroutine.wrap(function () local x = nil; return x.field end)
ok, err = pcall(w)
print(ok, err:match("attempt to index") ~= nil)
print(coroutine.resume(co))
local co3 = coroutine.create(function () print("after errors", Q) end)
coroutine.resume(co3)
