-- STAGE's sample bin/package/pure_sandbox.lua (datumflux/platform), ported: a sandbox made
-- in plain Lua on top of `__`. Two changes:
-- 1. STAGE's `__[k]` answers nil, and `__(k, f)` calls f with nil, for a name nobody
--    stored; stage-node raises for a name not starred in the policy ("Differences from
--    STAGE" in docs/lua-api.md: `__.NAME` reaches only starred names). The shim below gives
--    the sample STAGE's answers; the sample's own code is unchanged.
-- 2. The sample only builds the sandbox; the lines after it use it, so that the output
--    shows it works: a global of the main thread lands in _G, a coroutine's in its own
--    table that reads through to _G.
local real__, pcall = __, pcall -- locals: the sample replaces _ENV
local __ = setmetatable({}, {
  __index = function (_, k)
    local ok, v = pcall(function () return real__[k] end)
    if ok then return v end
  end,
  __call = function (_, k, f)
    local ok, r = pcall(real__, k, f)
    if ok then return r end
  end,
})
-- the sample, unchanged:
local _G, coroutine = _G, coroutine
local main_thread = coroutine.running() or {} -- returns nil in Lua 5.1
local thread_locals = setmetatable({ [main_thread] = _G }, { __mode = "k" })
local sandbox__metatable = {}

function sandbox__metatable:__index(k)
  local v = __[k]
  if v then
	return v
  else
    local th = coroutine.running() or main_thread
    local t = thread_locals[th]
    if t then
      return t[k]
    else
      return _G[k]
	end
  end
end

function sandbox__metatable:__newindex(k, v)
  if not __(k, function (o)
	  if o ~= nil then
		  return v
	  end
  end) then
    local th = coroutine.running() or main_thread
    local t = thread_locals[th]
    if not t then
      t = setmetatable({ _G = _G }, { __index = _G })
      thread_locals[th] = t
    end
    t[k] = v
  end
end

-- convenient access to thread local variables via the `sandbox` table:
local sandbox = setmetatable({}, sandbox__metatable)
-- or make `sandbox` the default for globals lookup ...
if setfenv then
  setfenv(1, sandbox) -- Lua 5.1
else
  _ENV = sandbox -- Lua 5.2+
end

-- added: the sandbox in use
X = "main"
print("X", X, rawget(_G, "X"))
local co = coroutine.create(function ()
  Y = "in co"
  print("co", X, Y, rawget(_G, "Y"))
end)
coroutine.resume(co)
print("Y", Y)
