-- Deleting a global after a snapshot really deletes it; pairs(_ENV) sees the whole view.
K1, K2 = 1, 2
coroutine.wrap(function () end)()   -- forces a snapshot of main
K1 = nil
print(K1, K2)
K2 = nil
K2 = 3
print(K2)
local co = coroutine.wrap(function ()
  print("co", K1, K2)
  K2 = nil
  print("co", K2)
  local names = {}
  for k in pairs(_ENV) do if type(k) == "string" and k:match("^K") then names[#names+1] = k end end
  table.sort(names)
  print("co names", table.concat(names, ","))
end)
co()
local names = {}
for k in pairs(_ENV) do if type(k) == "string" and k:match("^K") then names[#names+1] = k end end
print("main names", table.concat(names, ","), K2)
