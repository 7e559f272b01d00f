-- coroutine.wrap isolates like coroutine.create, and passes values both ways.
X = 1
local gen = coroutine.wrap(function (a)
  X = X + 100
  local b = coroutine.yield(a * 2, X)
  print("got", b, X)
  return "done"
end)
print(gen(21))
X = 5
print(gen("hi"))
print("X", X)
local ok, err = pcall(gen)
print(ok, (err:gsub("^.-: ", "")))
