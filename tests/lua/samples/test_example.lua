-- STAGE's sample bin/package/test_example.lua (datumflux/platform), ported in part. Changes:
-- 1. print (below) writes addresses as <addr>; pairs (below) lists in sorted order and
--    only the names the sample sets (STAGE's standard globals differ from stage-node's).
-- 2. `__.TEST = "HELLO"` needs TEST starred here: one line adds "*TEST" to the policy
--    before it (stage-node's `__` reaches only starred names: "Differences from STAGE").
-- 3. stage.proxy and stage.viewof are bundle.proxy and bundle.viewof (STAGE's preload
--    stage.lua makes them so; this test runs with the node's own preload), print_r is
--    STAGE's preload print_r.lua (samples/preload), and the view's file is a temporary one.
-- 4. The ticket part (stage.signal("ticket:odbc?fail_callback", ...) and its three
--    handlers) is left out: its output in STAGE depends on the category "odbc" that
--    STAGE's stage.json creates ("=ticket+ticket": [100000, {"odbc": 10}]), which
--    stage-node does not read, and on ticket.cpp's grant message (a "._TICKET" field,
--    "#N" values), which is not derived here; tests/lua/stages/ticket_queue.lua holds
--    the ticket stage's behaviour.
-- Expected (stage/lua/lbundlelib.cpp): proxy.test = 40 crosses the edges 10 and 20 (one
-- call), 0 and 41..70 cross none; name and HELLO go to "*", 10 to "#", the table key
-- through the key function (INDEX) to HELLO; the proxy prints as "index:[...]" (its name
-- up to the ':'). The view of the view (16 bytes in, one 24-byte record) spans the end
-- of row 1 ("23456789" of its c10) and the start of row 2, so SCOPE shows those bytes,
-- and writing it changes row 2 (UPDATE). buffer.rows and buffer.row_size are nil in
-- STAGE's source, 10 and 24 here ("Differences from STAGE").
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

-- (the odbc.new block is a comment in the sample)
dofile("tests/lua/samples/preload/print_r.lua") -- added (change 3)
local proxy = bundle.proxy({}, { -- changed (3): stage.proxy
	[""] = {
		"index:{10,10}",
		function (k, i)
			print("INDEX", k, i)
			return k[1]
		end,

		["*"] = function (t, edges, k, v)
			print("NAME CHANGE", t, edges, k, v)
		end,
		["#"] = function (t, edges, k, v)
			print("INDEX CHANGE", t, edges, k, v)
		end
	},
	test = { 10, 20, function (t, edges, k, v)
		print("TEST", edges, k, v)
		for k, v in pairs(edges) do
			print("", k, v)
		end
	end}
})

proxy.test = 0
proxy.test = 40
for i = 1, 30, 1 do
	proxy.test = proxy.test + 1
end

proxy.name = "HELLO"
proxy[10] = "STAGE"
proxy[{"HELLO", 20}] = "HAHA"

print("PROXY", proxy)
for k, v in pairs(proxy) do
	print("", k, v)
end

-- (the ticket part is left out: change 4)

local FILE = { os.tmpname(), { "b10 i c10" } } -- changed (3): "example.mmap"

bundle.viewof(FILE, 10, function (buffer) -- changed (3): stage.viewof
	print("MMAP", buffer.rows, buffer.row_size)
	buffer[1] = { {1, 2}, 2, "01234567890123" }
	buffer[2] = { {3, 4}, 10, "23456789890123" }
	buffer[10] = { {4, 6}, 20, "12123456789123" }
	print("RESULT", bundle.viewof({ buffer, { "b10 i c10" }}, 16, 1, function (data) -- (3)
		print("SCOPE") print_r(data[1])
		data[1] = { {6, 7}, 10, "11156789890123" }
		return "HELLO", "SUCCESS"
	end))
	print("UPDATE") print_r(buffer[2])

	buffer.scope(function ()
		print("RWLOCK")
	end)

	buffer.commit('async')
	--[[ for k, v in ipairs(buffer) do
		print("", k, v)
		print_r(v)
	end ]]
end)
os.remove(FILE[1]) -- added (3)

logger.out("HELLO LOG4CXX")
