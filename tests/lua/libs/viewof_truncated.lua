-- A script (or another process) that cuts a viewed file short must not take the node down:
-- with a MAP_SHARED mapping, touching the lost pages was SIGBUS for the whole node. A view
-- holds a copy of its bytes; commit writes it back, rollback and scope read the file again.
local path = os.tmpname()
local v = bundle.viewof({path, {"i"}}, 0, 1024)
v[1000] = {7}
v.commit()
io.open(path, "w"):close()          -- the file is now empty
print("after truncation", v[1000][1])  -- still the view's copy
v[1000] = {8}
v.commit("sync")                    -- writes the rows back, growing the file again
local f = io.open(path, "rb"); local size = #f:read("a"); f:close()
print("file size", size)
-- another writer changes the file: rollback reads it again
local w = bundle.viewof({path, {"i"}}, 0, 1024)
w[5] = {55}
w.commit()
print("before rollback", v[5][1])
v.rollback()
print("after rollback", v[5][1])
-- scope reads the file again before fn, and writes the rows back after a "rw" fn
w[6] = {66}
w.commit()
v.scope(function () print("in scope", v[6][1]); v[7] = {77} end)
w.rollback()
print("written by scope", w[7][1])
os.remove(path)
print("node still serving")
