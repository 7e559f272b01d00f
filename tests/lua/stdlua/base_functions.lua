-- getmetatable, rawget, rawset and next on values other than the globals answer exactly as
-- Lua 5.3's (the sandbox wraps them for its globals only).
print(pcall(rawget, 1, 2)); print(pcall(rawset, {}, nil, 1)); print(pcall(next, 5)); print(pcall(getmetatable))
print(getmetatable(setmetatable({}, {__metatable = "x"})), getmetatable("").__index == string, next({}), rawget({a=1}, "a"), rawset({}, 1, 2)[1])
print(pcall(next, {}, "nokey"))
