-- STAGE's sample bin/package/test_viewof.lua (datumflux/platform): its viewof half,
-- ported. Changes:
-- 1. The file "example.mmap" is a temporary file (tests run side by side), removed after.
-- 2. print (below) writes addresses as <addr>.
-- stage.viewof is bundle.viewof through STAGE's preload stage.lua (samples/preload, the
-- flags), print_r is its print_r.lua. The other half (route:@ with its offer handshake,
-- route_callback, offer_callback) is not ported: stage-node's route delivers a topic to
-- one subscriber without the handshake ("Differences from STAGE", the route row).
-- Expected, from STAGE's source (stage/lua/lbundlelib.cpp): a record "b4 i", "s10" is
-- 4 + 4 + 10 = 18 bytes; "s10" keeps 9 characters and its '\0'; r[1] = {[3] = 4} sets the
-- third int8 only; a row prints as "viewof: ADDR [18 size]", the view as "viewof: ADDR
-- [18 size, 10 count]". buffer.rows is 10: stage-node answers rows and row_size (which
-- STAGE's test_example.lua reads) beside size and count; STAGE's source answers nil
-- ("Differences from STAGE").
local function print(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = (tostring(t[i]):gsub("0x%x+", "<addr>")) end
  _G.print(table.concat(t, "\t", 1, t.n))
end
local FILE = { os.tmpname(), { "b4 i", "s10" } } -- changed (1)

stage.viewof(FILE, 10, function (buffer)
	print("MMAP", buffer, buffer.rows, buffer.size)
	buffer[1] = { {1, 2}, 2, "01234567890123" }
	buffer[2] = { {3, 4}, 15, "23456789890123" }
	buffer[10] = { {4, 6}, 20, "12123456789123" }
	--[[
	print("RESULT", stage.viewof({ buffer, { "b4 i c10" }}, buffer.size, 1, function (data)
		print("SCOPE") print_r(data[1])
		data[1] = { {6, 7}, 10, "11156789890123" }
		return "HELLO", "SUCCESS"
	end)) ]]
	local r = buffer[2]

	r[1] = { [3] = 4 }
	r[2] = 20
	print("UPDATE", r) print_r(r)

	buffer.scope(function ()
		print("RWLOCK")
	end)

	buffer.commit('async')
	--[[ for k, v in ipairs(buffer) do
		print("", k, v)
		print_r(v)
	end ]]
	print("END", buffer)
end)
os.remove(FILE[1]) -- added (1)
