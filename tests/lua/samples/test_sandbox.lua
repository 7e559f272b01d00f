-- STAGE's sample bin/package/test_sandbox.lua (datumflux/platform), ported. Changes:
-- 1. print (below) writes addresses as <addr>; in the actor, once the main chunk is done,
--    it keeps lines and prints them sorted 1.5 s later (a message, a job and its result
--    race); the job prints at once.
-- 2. pairs (below) lists in sorted order and only the names the sample sets: STAGE's and
--    stage-node's standard globals differ (libraries), and neither orders pairs.
-- 3. The `__[1]` lines are left out: STAGE's numbered spaces of the store (`__[n]`) are
--    not built here ("Differences from STAGE" in docs/lua-api.md).
local lines, async = {}, false
IN_ACTOR = true -- a job does not see this private global
local function print(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = (tostring(t[i]):gsub("0x%x+", "<addr>")) end
  local line = table.concat(t, "\t", 1, t.n)
  if async and IN_ACTOR then lines[#lines + 1] = line else _G.print(line) end
end
local known = {}
for k in _G.pairs(_G) do known[k] = true end
local function pairs(t)
  local keys = {}
  for k in _G.pairs(t) do
    if not known[k] and k ~= "IN_ACTOR" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local i = 0
  return function ()
    i = i + 1
    if keys[i] ~= nil then return keys[i], t[keys[i]] end
  end
end
stage.addtask(1500, function ()
  table.sort(lines)
  for _, l in ipairs(lines) do _G.print(l) end
end)
-- the sample:
print("SANDBOX", _SANDBOX)
--[[
if setfenv then
  setfenv(1, getmetatable(_SANDBOX)) -- Lua 5.1
else
  _ENV = _SANDBOX -- Lua 5.2+
end
]]--
_SANDBOX[""] = { "*HELLO", "TEST" }

stage.waitfor("callback", function (v)
	print("============CALLBACK", v)
	if type(v) == "table" then
		for k, i in pairs(v) do
			print("", k, i)
		end
	end
end)

HELLO = "HI HELLO"
print("NORMAL _SANDBOX============================")
_G.DIRECT = "1234"
PRIVATE = "1122"
for k, v in pairs(_SANDBOX) do
	print("", k, v)
end

print("NORMAL _G============================")
print("_G", _VERSION, _G)
for k, v in pairs(_G) do
	print("", k, v)
end

print("============================")
TEST="PUBLIC"
co = coroutine.create(function (a,b,c)
   print("COROUTINE _G", a,b,c, HELLO, TEST)
   --[[ for k, v in pairs(_G) do
  	  print("", k, v)
   end ]]
   coroutine.yield()
   -- NAME = "HELLO"
   print("COROUTINE _SANDBOX", _VERSION)
   --[[ for k, v in pairs(_SANDBOX) do
   	  print("", k, v)
   end ]]--

   co2 = coroutine.create(function (a,b,c)
	   print("COROUTINE _SANDBOX2", _VERSION)
	   -- PRIVATE = "TEST"
	   --[[ for k, v in pairs(_SANDBOX) do
		  print("", k, v)
	   end ]]
	   stage.signal("callback", "HI TEST")
	end)
	coroutine.resume(co2, 1, 2, 3)

   PRIVATE = "NAME11"
   print("COROUTINE _SANDBOX", _VERSION)
   --[[ for k, v in pairs(_SANDBOX) do
   	  print("", k, v)
   end ]]
   print("co", a,b,c, HELLO, PRIVATE)
end)
PRIVATE = "2233"
TEST="CHANGE"
coroutine.resume(co, 1, 2, 3)
coroutine.resume(co, 3, 4, 5)
print("============================")
--[[ print("_SANDBOX", _VERSION)
for k, v in pairs(_SANDBOX) do
	print("", k, v)
end ]]--

thread.new(function (a, b)
	print("CALL", a, b)
	return a + b
end, 10, 20).waitfor(function (r)
	print("RESULT", r)
end)
-- (the port) from here on, the actor's lines wait: set as the main chunk ends, since a timer
-- of 0 ms could fire after the "callback" message was handled
async = true
