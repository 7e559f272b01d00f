-- preload/stages.lua compiles its definitions at their first use: what a script sees is the
-- same as if they were defined at start (names, errors that point into preload/stages.lua,
-- no metatable left on stage.builtin, and a script's own entry set before first use kept).
stage.builtin.mine = function () return "mine" end
print(stage.builtin.mine())
local names = {}
for k in pairs(stage.builtin) do names[#names + 1] = k end
table.sort(names)
print(table.concat(names, " "))
print(getmetatable(stage.builtin))
local ok, err = pcall(stage.builtin.limits, "x", 5)
print(ok, (err:gsub("^.-(stages%.lua:)%d+:", "%1N:")))
print(type(stage.actor), type(stage.builtin.index))
