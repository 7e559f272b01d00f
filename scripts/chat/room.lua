-- A chat room of the demo (stage room_NAME; scripts/chat/gate.lua sends it join, say and
-- leave with the client's socket id). The room may be on another node than its members'
-- sockets: broker.f(id).commit reaches a socket on any node.
local members, count = {}, 0 -- socket id -> nick
local relayed = 0

local function send_all(msg)
  for id in pairs(members) do
    if broker.f(id).commit(msg) ~= 0 then -- its node is gone
      members[id], count = nil, count - 1
    end
  end
end

stage.waitfor("join", function (id, nick, room, gate)
  ROOM = room
  if not members[id] then count = count + 1 end
  members[id] = nick
  broker.f(id).commit({ op = "joined", room = room, node = process.name, members = count })
  send_all({ op = "msg", room = room, node = process.name, nick = "*",
             text = nick .. " joined from " .. gate })
end)

stage.waitfor("say", function (id, text)
  local nick = members[id]
  if not nick then return end
  relayed = relayed + 1
  send_all({ op = "msg", room = ROOM, node = process.name, nick = nick, text = text })
  print(("chat: room %s on %s relayed message %d from %s to %d clients"):format(
    ROOM, process.name, relayed, nick, count))
end)

stage.waitfor("leave", function (id)
  if members[id] then
    local nick = members[id]
    members[id], count = nil, count - 1
    send_all({ op = "msg", room = ROOM, node = process.name, nick = "*", text = nick .. " left" })
  end
end)
