// The chat page: JSON over WebSocket to the node's chat gate (scripts/chat/gate.lua).
// The WebSocket port: ?ws=PORT (or a full ws:// URL), else this page's port + 10.
// ?nick=N&room=R joins at once; &say=TEXT then sends TEXT (used by the tests).
"use strict";
const q = new URLSearchParams(location.search);
const wsParam = q.get("ws");
const wsUrl = wsParam && wsParam.startsWith("ws")
  ? wsParam
  : "ws://" + location.hostname + ":" + (wsParam || (Number(location.port || 80) + 10)) + "/chat";
const $ = (id) => document.getElementById(id);
let ws, joined = null, said = false;

function line(cls, text, node) {
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = text;
  if (node) {
    const n = document.createElement("span");
    n.className = "node";
    n.textContent = "  (room on " + node + ")";
    li.appendChild(n);
  }
  $("log").appendChild(li);
  $("log").scrollTop = $("log").scrollHeight;
  console.log("CHAT " + cls + " " + text);
}

function send(obj) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
}

function join(nick, room) {
  send({ op: "join", nick: nick, room: room });
}

function connect() {
  ws = new WebSocket(wsUrl);
  ws.onopen = () => { $("status").textContent = "connected to " + wsUrl; };
  ws.onclose = (e) => {
    $("status").textContent = "disconnected (" + e.code + "); retrying in 2 s";
    $("text").disabled = $("send").disabled = true;
    joined = null;
    setTimeout(connect, 2000);
  };
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch (err) { return; }
    if (m.op === "hello") {
      $("status").textContent = "connected to node " + m.node + " (" + wsUrl + ")";
      const sel = $("room");
      sel.textContent = "";
      for (const r of m.rooms || []) {
        const o = document.createElement("option");
        o.value = o.textContent = r;
        sel.appendChild(o);
      }
      if (q.get("room")) sel.value = q.get("room");
      if (q.get("nick")) {
        $("nick").value = q.get("nick");
        join(q.get("nick"), q.get("room") || sel.value);
      }
    } else if (m.op === "joined") {
      joined = m.room;
      $("where").textContent = "in room " + m.room + ", held by an actor on node " + m.node +
        " (" + m.members + " here)";
      $("where").dataset.node = m.node;
      $("text").disabled = $("send").disabled = false;
      $("text").focus();
      if (q.get("say") && !said) {
        said = true;
        send({ op: "say", text: q.get("say") });
      }
    } else if (m.op === "msg") {
      if (m.nick === "*") line("sys", m.text, m.node);
      else line("msg", m.nick + ": " + m.text, m.node);
    } else if (m.op === "error") {
      line("err", "error: " + m.text);
    }
  };
}

$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  join($("nick").value || "guest", $("room").value);
});
$("say").addEventListener("submit", (e) => {
  e.preventDefault();
  const t = $("text").value;
  if (t && joined) send({ op: "say", text: t });
  $("text").value = "";
});
connect();
