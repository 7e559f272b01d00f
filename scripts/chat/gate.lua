-- The chat demo's door, one per node (scripts/run-demo.py starts it as the node's script):
-- browsers speak JSON over WebSocket to it. Each room is one actor (stage room_NAME,
-- scripts/chat/room.lua) somewhere in the cluster; the gate hands it the socket id, and
-- the room commits to every member's socket itself, whichever node that socket is on.
-- Usage: stage-node ... scripts/chat/gate.lua WS_PORT [ROOM...]
local PORT = tonumber(process.args[1])
if not PORT then error("usage: gate.lua WS_PORT [ROOM...]") end
local ROOMS = {}
for i = 2, #process.args do ROOMS[#ROOMS + 1] = process.args[i] end
if #ROOMS == 0 then ROOMS = { "lobby", "games", "music" } end
local known = {}
for _, r in ipairs(ROOMS) do known[r] = true end
local NICK_MAX, TEXT_MAX = 32, 1000
local seen = 0

local function leave(s)
  if s.room then
    stage.signal("room_" .. s.room .. ":leave", s.id)
    s.room = nil
  end
end

local function receive(s, m)
  if type(m) ~= "table" then return { op = "error", text = "expected a JSON object" } end
  if m.op == "join" then
    local room, nick = tostring(m.room), tostring(m.nick or "guest"):sub(1, NICK_MAX)
    if not known[room] then return { op = "error", text = "no room " .. room } end
    leave(s)
    local n, why = stage.signal("room_" .. room .. ":join", s.id, nick, room, process.name)
    if n == 0 then
      return { op = "error", text = "room " .. room .. " is not reachable: " .. tostring(why) }
    end
    s.room, s.nick = room, nick
  elseif m.op == "say" then
    if not s.room then return { op = "error", text = "join a room first" } end
    stage.signal("room_" .. s.room .. ":say", s.id, tostring(m.text or ""):sub(1, TEXT_MAX))
  else
    return { op = "error", text = "unknown op " .. tostring(m.op) }
  end
end

local listener, why = broker.ready("ws://127.0.0.1:" .. PORT .. "/chat?json", function (s, addr)
  seen = seen + 1
  print(("chat: client %d connected to %s from %s"):format(seen, process.name, broker.ntoa(addr)))
  s.close = function (s) leave(s) end
  s.commit({ op = "hello", node = process.name, rooms = ROOMS })
  return receive
end)
if not listener then error("cannot listen on WebSocket port " .. PORT .. ": " .. tostring(why)) end
print(("chat: %s serves WebSocket on ws://127.0.0.1:%d/chat"):format(process.name, PORT))
