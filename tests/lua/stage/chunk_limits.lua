-- The compiled-Lua cache's limits (docs/node.md: chunk_files, chunk_file_kb): past them a
-- file is compiled in every state, which says so once in the log, and actors run as before.
os.execute("mkdir -p build/chunktest")
local function write(path, body)
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
  assert(os.execute("touch -d '2020-01-01 00:00:00' " .. path)) -- old enough to be kept
end
local big = {"local t = {}"}
for i = 1, 200 do big[#big + 1] = ("t[%d] = 'value number %d'"):format(i, i) end
big[#big + 1] = "stage.waitfor('ver', function () return 'big ' .. #t end)"
write("build/chunktest/big.lua", table.concat(big, "\n"))
for i = 1, 3 do
  write("build/chunktest/small" .. i .. ".lua", "stage.waitfor('ver', function () return 'small " .. i .. "' end)")
end
local files = {"small1", "small2", "big", "small3", "big", "small1"}
local step = 0
local function next_child()
  step = step + 1
  if step > #files then return end
  local addr = stage.spawn("c" .. step, "build/chunktest/" .. files[step] .. ".lua")
  stage.signal({"c" .. step .. ":ver=answer", addr})
end
stage.waitfor("answer", function (v)
  print(files[step], v)
  next_child()
end)
next_child()
