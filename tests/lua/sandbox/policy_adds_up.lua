-- Assigning _ENV[""] adds names; it never removes; reading gives the list back.
_ENV[""] = { "A", "*B" }
_ENV[""] = { "C" }
_SANDBOX[""] = { "A", "D" }
print(table.concat(_ENV[""], ","))
print(table.concat(_SANDBOX[""], ","))
_ENV[""] = { "*A" }          -- a plain name can become starred
print(table.concat(_ENV[""], ","))
local list = _ENV[""]
list[1] = "Z"                 -- the list is a copy
print(_ENV[""][1])
print(rawget(_ENV, ""), _SANDBOX == _SANDBOX, getmetatable(_SANDBOX))  -- a view (STAGE)
