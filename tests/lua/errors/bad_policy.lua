-- Bad policy entries raise an error naming the entry; nothing of that list is applied.
local function try(v)
  local ok, err = pcall(function () _ENV[""] = v end)
  print(ok, (err:gsub("^.-:%d+: ", "")))
end
try({ "OK1", 42 })
try({ "" })
try({ "*" })
try({ "a b" })
try("RESULT")
print(#_ENV[""])
_ENV[""] = { "GOOD", {} }
