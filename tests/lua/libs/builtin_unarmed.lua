-- stage.builtin and stage.actor are stubs in C, armed by preload/stages.lua (issue 17: its
-- Lua stub cost every actor ~6 KiB). With a preload folder that has no stages.lua, nothing
-- arms them: stage.builtin reads as an empty table (no entry, no error), a script's own
-- entries work, and stage.actor fails with an error that names what is missing.
print(type(stage.builtin), stage.builtin.index, next(stage.builtin))
local n = 0
for _ in pairs(stage.builtin) do n = n + 1 end
print("entries", n)
print(pcall(stage.actor, "x", print))
stage.builtin.mine = function () return "mine" end
print(stage.builtin.mine(), rawget(stage.builtin, "mine") ~= nil)
