-- bundle.viewof (STAGE docs/api/bundle.md): packed C records in a file, read and written in
-- place. The documented example: struct example { char name[10]; int age; } (packed), 10 rows.
local path = os.tmpname()
os.remove(path)
local buffer = bundle.viewof({path, { "c10", "i" }}, 10)

buffer[2] = { "HELLO", 100 }
print("row_size", buffer.row_size, "rows", buffer.rows, "#", #buffer)
print((buffer[2][1]:gsub("%z", ".")), buffer[2][2])

-- byte access to buffer[2], through a view of the view
bundle.viewof({buffer, buffer.row_size}, buffer.row_size, 1, function (row)
   row[1] = 32 -- 'H' -> ' '
end)
print((buffer[2][1]:gsub("%z", ".")))
buffer.commit()
buffer.commit("sync")

-- the file holds exactly the packed bytes
local f = assert(io.open(path, "rb"))
local bytes = f:read("a")
f:close()
local name, age, nextpos = string.unpack("<c10i4", bytes, 15)
print("file bytes", #bytes, (name:gsub("%z", ".")), age, nextpos)

-- the whole file again, with an 's' field (its text ends at the first '\0')
local again = bundle.viewof({path, {"s10", "i"}})
print("again", again.rows, again[2][1], again[2][2], again[1][1] == "")

-- every type: b B h H i I l f d, arrays ("H3"), several in one string
local p2 = os.tmpname()
local all = bundle.viewof({p2, {"b B h H", "i I l", "f d", "H3"}}, 2)
all[1] = {-1, 255, -2, 65535, -3, 4294967295, -4, 1.5, 0.25, {1, 2, 3}}
local r = all[1]
print(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], table.concat(r[10], ","), #r, all.row_size)
r[2] = 256   -- wraps as in C
print(r[2])
local n = 0
for i, row in pairs(all) do n = n + 1 end
print("rows by pairs", n)

-- a window starting mid-file: start in bytes, then rows
local win = bundle.viewof({path, {"c10", "i"}}, 14, 1)
print("window", (win[1][1]:gsub("%z", ".")), win[1][2])

-- a plain file name gives byte rows
local bytesview = bundle.viewof(path)
print("bytes", bytesview.rows, bytesview[5], bytesview[15])

-- the lock scope returns the function's results and frees the lock on error
print(buffer.scope(function () return "rw" end), buffer.scope("ro", function () return "ro" end))
print(pcall(buffer.scope, function () error("inside scope") end))
print(buffer.scope(function () return "again" end))
buffer.rollback()

-- bad input: clear errors, the script goes on
print(pcall(function () buffer[11] = {"x", 1} end))
print(buffer[11], buffer[0])
print(pcall(function () buffer[1] = {"x", "not a number"} end))
print(pcall(bundle.viewof, {path, {"c10", "q"}}))
print(pcall(bundle.viewof, {path, {"c10"}}, 0, 1 << 40))
print(pcall(bundle.viewof, {buffer, 14}, 140, 1))
print(pcall(bundle.viewof, "/no/such/dir/file"))
print(pcall(bundle.viewof, 42))
print(tostring(buffer):match("^viewof: .* %[14 size, 10 count%]$") ~= nil)
os.remove(path)
os.remove(p2)
