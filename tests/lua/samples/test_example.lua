-- STAGE's sample bin/package/test_example.lua (datumflux/platform), ported in part. Changes:
-- 1. print (below) writes addresses as <addr>; pairs (below) lists in sorted order and
--    only the names the sample sets (STAGE's standard globals differ from stage-node's).
-- 2. `__.TEST = "HELLO"` needs TEST starred here: one line adds "*TEST" to the policy
--    before it (stage-node's `__` reaches only starred names: "Differences from STAGE").
-- 3. The part after logger.out's place is left out: its stage.proxy spec is bundle.proxy's
--    (tests/lua/libs), its messages go to the "ticket" stage (built in part 5: a message
--    to it raises here) and its stage.viewof is bundle.viewof (tests/lua/libs). The
--    logger.out line that ends the sample is kept.
-- The thread that starts weblit fails in STAGE too without luvit's files: its error is
-- logged (NAME.err).
local function print(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = (tostring(t[i]):gsub("0x%x+", "<addr>")) end
  _G.print(table.concat(t, "\t", 1, t.n))
end
local known = {}
for k in _G.pairs(_G) do known[k] = true end
local function pairs(t)
  local keys = {}
  for k in _G.pairs(t) do
    if not known[k] then keys[#keys + 1] = k end
  end
  table.sort(keys, function (a, b) return tostring(a) < tostring(b) end)
  local i = 0
  return function ()
    i = i + 1
    if keys[i] ~= nil then return keys[i], t[keys[i]] end
  end
end
-- the sample:
thread.new(function ()

---
--
dofile 'luvit-loader.lua' -- Enable require to find lit packages
local p = require('pretty-print').prettyPrint -- Simulate luvit's global p()

-- This returns a table that is the app instance.
-- All it's functions return the same table for chaining calls.
require('weblit-app')

  -- Bind to localhost on port 3000 and listen for connections.
  .bind({
    host = "0.0.0.0",
    port = 3000
  })

  -- Include a few useful middlewares.  Weblit uses a layered approach.
  .use(require('weblit-logger'))
  .use(require('weblit-auto-headers'))
  .use(require('weblit-etag-page'))

  -- This is a custom route handler
  .route({
    method = "GET", -- Filter on HTTP verb
    path = "/greet/:name", -- Filter on url patterns and capture some parameters.
  }, function (req, res)
    p(req) -- Log the entire request table for debugging fun
    res.body = "Hello " .. req.params.name .. "\n"
    res.code = 200
  end)

  -- Actually start the server
  .start()

-- We also need to explicitly start the libuv event loop.
require('luv').run()

end)

--
--
_SANDBOX[""] = { "*EXAMPLE" }

stage.waitfor("callback", function (a, b, c)
	print("WAITFOR", a, b, c)
end)

EXAMPLE = { 10, 20 }
print("EXAMPLE", EXAMPLE)
for k, v in pairs(EXAMPLE) do
	print("", k, v)
end

print("SANDBOX")
_SANDBOX[""] = { "*TEST" } -- added (change 2)
__.TEST = "HELLO"
for k, v in pairs(_SANDBOX) do
	print("", k, v)
end
stage.signal("callback", 10, 20, { "HELLO" } )

logger.out("HELLO LOG4CXX")
