-- stage.spawn(sid, file) and the preload run the file as it is now: each process compiles
-- a file once and keeps its bytecode (lua_chunks), and an edit, even one that keeps the
-- size, reaches the next actor. The first version is dated back so that it is kept.
os.execute("mkdir -p build/spawntest")
local path = "build/spawntest/child.lua"
local function write(v)
  local f = assert(io.open(path, "w"))
  f:write("stage.waitfor('ver', function () return '" .. v .. "' end)\n")
  f:close()
end
write("v1")
assert(os.execute("touch -d '2020-01-01 00:00:00' " .. path))
local versions = {"v1", "v1", "v2", "v3"}
local step = 0
local function next_child()
  step = step + 1
  if step > #versions then return end
  local addr = stage.spawn("c" .. step, path)
  stage.signal({"c" .. step .. ":ver=answer", addr})
end
stage.waitfor("answer", function (v)
  print("child " .. step, v, v == versions[step] and "ok" or ("expected " .. versions[step]))
  if step == 2 then write("v2") end -- same size, new mtime
  if step == 3 then write("v3") end -- and again, at once
  next_child()
end)
next_child()
