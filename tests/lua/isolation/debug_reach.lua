-- The debug library cannot reach past the guards: the originals behind load, setmetatable
-- and string.find (upvalues of C functions), the registry, the metatable of files (whose
-- __gc a script could otherwise replace with a loop that no budget stops).
print(select("#", debug.getupvalue(load, 1)), select("#", debug.getupvalue(setmetatable, 1)),
      select("#", debug.getupvalue(string.find, 1)))
print(select("#", debug.setupvalue(load, 1, print)))
print(pcall(debug.upvalueid, load, 1))
print(pcall(debug.getregistry))
print(debug.getmetatable(io.stdout), getmetatable(io.stdout))
print(pcall(load, string.dump(function () end)))
local function f() local x = 1 return function () return x end end
print(debug.getupvalue(f(), 1))
print(type(debug.getmetatable("").__index), debug.getmetatable({}))
