"""The broker over TLS (docs/broker.md): tls:// (framed and raw) and wss:// (text and binary)
with real Python ssl clients and python3-websockets, certificates made by the test with the
openssl command; a client that never ends its handshake is dropped at broker_handshake; a
plain-TCP client to a tls port fails and is counted; a tls:// join verifies the server (refused
without the CA, accepted with it)."""
import asyncio
import os
import socket
import ssl
import struct
import subprocess
import time

from harness import check, fail, free_port, need_websockets, timeout, wait_until


def make_certs(ctx):
    """A CA and a server certificate it signs for 127.0.0.1 and localhost (EC P-256, 2 days).
    Returns (ca.pem, server.pem, server.key, other.pem, other.key); other is self-signed."""
    d = ctx.path("pki")
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(p("san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        ["openssl", "req", "-x509"] + ec + ["-keyout", p("ca.key"), "-out", p("ca.pem"),
                                           "-days", "2", "-subj", "/CN=stage-node test CA"],
        ["openssl", "req"] + ec + ["-keyout", p("server.key"), "-out", p("server.csr"),
                                   "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey",
         p("ca.key"), "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile",
         p("san.ext")],
        ["openssl", "req", "-x509"] + ec + ["-keyout", p("other.key"), "-out", p("other.pem"),
                                           "-days", "2", "-subj", "/CN=other"],
    ]
    for argv in steps:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(r.returncode == 0, "%s: %s" % (" ".join(argv), r.stderr.decode(errors="replace")))
    return p("ca.pem"), p("server.pem"), p("server.key"), p("other.pem"), p("other.key")


def frame(payload):
    return struct.pack("<I", len(payload) + 4) + payload


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            fail("connection closed after %d of %d bytes" % (len(out), n))
        out += b
    return out


def read_frame(s):
    n = struct.unpack("<I", recv_exact(s, 4))[0]
    return recv_exact(s, n - 4)


def ports(n):
    """n consecutive free ports on 127.0.0.1; returns the first."""
    while True:
        base = free_port()
        ok = True
        for i in range(1, n):
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", base + i))
            except OSError:
                ok = False
            finally:
                probe.close()
        if ok:
            return base


ECHO_LUA = r'''
local P = tonumber(process.args[1])
local function note(s) s.close = function (s, err, why) print("CLOSED " .. why) end end
print("framed", broker.ready("tls://127.0.0.1:" .. P .. "?packet=10k:10k", function (s)
  note(s)
  return function (s, data) return "echo:" .. data end
end) ~= nil)
broker.ready("tls://127.0.0.1:" .. (P + 1), function (s)
  note(s)
  return function (s, data) s.commit(data) end
end)
broker.ready("wss://127.0.0.1:" .. (P + 2) .. "/ws", function (s)
  note(s)
  return function (s, data) return data end
end)
print("READY")
'''


def tls_node(ctx, sets=None):
    ca, cert, key, _, _ = make_certs(ctx)
    base = ports(3)
    script = ctx.script("tls_echo.lua", ECHO_LUA)
    a = ctx.node("A", script=None, sets=sets,
                 extra=["--broker-cert", cert, "--broker-key", key, script, str(base)])
    a.wait_line(r"^READY$", 20)
    a.wait_stderr(r"listening on wss://", 10)
    client = ssl.create_default_context(cafile=ca)
    return a, base, client


def tls_connect(client, port):
    raw = socket.create_connection(("127.0.0.1", port), 5)
    return client.wrap_socket(raw, server_hostname="127.0.0.1")


@timeout(60)
def test_tls_echo_framed_and_raw(ctx):
    a, p, client = tls_node(ctx)
    s = tls_connect(client, p)
    for msg in (b"hello", b"", b"x" * 9000):
        s.sendall(frame(msg))
        check(read_frame(s) == b"echo:" + msg, "framed tls echo of %d bytes" % len(msg))
    s.sendall(frame(b"a") + frame(b"b"))
    check(read_frame(s) == b"echo:a" and read_frame(s) == b"echo:b", "two frames in one write")
    r = tls_connect(client, p + 1)
    big = os.urandom(300000)  # many TLS records, both ways
    r.sendall(big)
    got = b""
    while len(got) < len(big):
        b = r.recv(65536)
        if not b:
            fail("raw tls echo closed after %d bytes" % len(got))
        got += b
    check(got == big, "raw tls echo of 300 kB")
    s.sendall(struct.pack("<I", 100000) + b"x" * 16)  # over IN = 10k: closed cleanly
    s.settimeout(5)
    check(s.recv(100) == b"", "an oversize frame closes the tls connection (close_notify)")
    a.wait_line(r"^CLOSED frame of 100000 bytes over the limit of 10240$", 10)
    r.sendall(b"still")
    check(r.recv(100) == b"still", "the other tls connection still served")
    r.close()
    a.wait_line(r"^CLOSED closed by the peer$", 10)


@timeout(60)
def test_wss_echo_text_and_binary(ctx):
    websockets = need_websockets()
    a, p, client = tls_node(ctx)

    async def run():
        async with websockets.connect("wss://127.0.0.1:%d/ws" % (p + 2), ssl=client) as c:
            await c.send("text é ✓")
            check(await c.recv() == "text é ✓", "wss text echo keeps text")
            await c.send(b"\x00\x01\xffbinary")
            check(await c.recv() == b"\x00\x01\xffbinary", "wss binary echo keeps binary")
            pong = await c.ping(b"hi")
            await asyncio.wait_for(pong, 5)
            big = b"z" * 200000
            await c.send(big)
            check(await c.recv() == big, "a 200 kB wss message")
        try:
            async with websockets.connect("wss://127.0.0.1:%d/nope" % (p + 2), ssl=client):
                fail("a wrong path is refused")
        except websockets.exceptions.InvalidStatusCode as e:
            check(e.status_code == 404, "wrong path over wss: 404, got %s" % e.status_code)
    asyncio.run(run())
    a.wait_stderr(r"upgrade refused: 404", 5)


@timeout(60)
def test_unfinished_handshake_dropped_at_handshake_time(ctx):
    a, p, client = tls_node(ctx, sets={"broker_handshake": 800})
    slow = []
    for port in (p, p + 2):  # tls:// and wss://: nothing, then half a ClientHello
        s = socket.create_connection(("127.0.0.1", port), 5)
        slow.append(s)
        h = socket.create_connection(("127.0.0.1", port), 5)
        h.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a record that never ends
        slow.append(h)
    t0 = time.monotonic()
    for s in slow:
        s.settimeout(6)
        try:
            check(s.recv(100) == b"", "an unfinished TLS handshake is dropped")
        except ConnectionResetError:
            pass
    took = time.monotonic() - t0
    check(took < 3, "dropped within the handshake time (+ sweep): %.1f s" % took)
    a.wait_stderr(r"closed \(handshake\): handshake not done in time", 5)
    lst = "tls://127.0.0.1:%d?packet" % p
    wait_until(lambda: a.metric("stage_broker_closed_total", listener=lst,
                                reason="handshake") == 2, 10, "2 handshake closes counted")
    s = tls_connect(client, p)  # served after
    s.sendall(frame(b"after"))
    check(read_frame(s) == b"echo:after", "served after the slow handshakes")


@timeout(60)
def test_plain_tcp_to_tls_port_fails_and_is_counted(ctx):
    a, p, client = tls_node(ctx)
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", p + 1), 5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            while s.recv(1000):  # an alert, then the end
                pass
        except ConnectionResetError:
            pass
        s.close()
    lst = "tls://127.0.0.1:%d" % (p + 1)
    wait_until(lambda: a.metric("stage_broker_closed_total", listener=lst, reason="tls") == 3,
               10, "3 failed TLS handshakes counted (reason tls)")
    check(a.metric("stage_broker_open", listener=lst) == 0, "none left open")
    # logged once, the rest within 10 s are counted only (rate-limited)
    a.wait_stderr(r"TLS handshake failed: .*(wrong version|http request|packet length)", 5)
    time.sleep(0.5)
    n = a.stderr().count("TLS handshake failed")
    check(n == 1, "3 failures, 1 log line within 10 s (got %d)" % n)
    brk = {x["uri"]: x for x in a.status()["nodes"]["A"]["broker"]}
    check(brk[lst]["closed"]["tls"] == 3, "status.json counts them: %r" % brk.get(lst))
    r = tls_connect(client, p + 1)  # the listener still serves
    r.sendall(b"fine")
    check(r.recv(100) == b"fine", "served after the plain clients")


JOIN_LUA = r'''
local P, CA, OTHER = tonumber(process.args[1]), process.args[2], process.args[3]
broker.ready("tls://127.0.0.1:" .. P .. "?packet", function (s)
  return function (s, d) return "pong:" .. d end
end)
local function try(name, uri)
  local s, why = broker.join(uri, function (s)
    print(name .. " CONNECTED")
    s.commit("ping")
    return function (s, d) print(name .. " GOT " .. d) end
  end)
  if type(s) ~= "userdata" then print(name .. " ERR " .. tostring(why)) return end
  s.close = function (s, e, why) print(name .. " CLOSED " .. why) end
end
local base = "tls://127.0.0.1:" .. P .. "?packet"
try("NOCA", base)                                 -- the system's CAs do not know ours
try("CA", base .. "&ca=" .. CA)
try("WRONGCA", base .. "&ca=" .. OTHER)
try("NAME", "tls://localhost:" .. P .. "?packet&ca=" .. CA)
try("NOVERIFY", base .. "&verify=none")
try("BADFILE", base .. "&ca=/nonexistent/ca.pem")
print("TRIED")
'''


@timeout(60)
def test_join_tls_verifies_the_server(ctx):
    ca, cert, key, other, _ = make_certs(ctx)
    p = ports(1)
    script = ctx.script("tls_join.lua", JOIN_LUA)
    a = ctx.node("A", script=None, extra=["--broker-cert", cert, "--broker-key", key, script,
                                          str(p), ca, other])
    a.wait_line(r"^TRIED$", 20)
    a.wait_line(r"^NOCA CLOSED TLS handshake failed: certificate verify failed: unable to get "
                r"local issuer certificate$", 10)
    a.wait_line(r"^WRONGCA CLOSED TLS handshake failed: certificate verify failed", 10)
    for name in ("CA", "NAME", "NOVERIFY"):
        a.wait_line(r"^%s CONNECTED$" % name, 10)
        a.wait_line(r"^%s GOT pong:ping$" % name, 10)
    a.wait_line(r"^BADFILE ERR TLS CAs '/nonexistent/ca.pem': ", 5)
    wait_until(lambda: a.metric("stage_broker_closed_total", listener="join",
                                reason="tls") == 2, 10, "the 2 refused joins counted")
    for name in ("NOCA", "WRONGCA"):
        check(not any(l.startswith(name + " CONNECTED") for l in a.lines()),
              "%s never connected" % name)


BADKEY_LUA = r'''
print("RESULT", broker.ready("tls://127.0.0.1:" .. process.args[1], function () end))
'''


@timeout(30)
def test_key_that_does_not_match_is_refused(ctx):
    _, cert, _, _, other_key = make_certs(ctx)
    script = ctx.script("badkey.lua", BADKEY_LUA)
    a = ctx.node("A", script=None, extra=["--broker-cert", cert, "--broker-key", other_key,
                                          script, str(free_port())])
    a.wait_line(r"^RESULT\t22\t--broker-key '.*other.key': .*key values mismatch$", 10)


WSS_JOIN_LUA = r'''
local function try(name, uri)
  local s, why = broker.join(uri, function (s)
    print(name .. " CONNECTED")
    s.commit("hello")
    s.commit("\0bin", "binary")
    return function (s, d) print(name .. " GOT " .. d:gsub("%c", "?")) end
  end)
  if type(s) ~= "userdata" then print(name .. " ERR " .. tostring(why)) return end
  s.close = function (s, e, why) print(name .. " CLOSED " .. why) end
end
try("CA", process.args[1] .. "?ca=" .. process.args[2])
try("NOCA", process.args[1])
'''


@timeout(60)
def test_wss_join_node_to_node(ctx):
    a, base, _ = tls_node(ctx)
    ca = ctx.path("pki/ca.pem")
    uri = "wss://127.0.0.1:%d/ws" % (base + 2)
    j = ctx.node("J", script=None, extra=[ctx.script("wss_join.lua", WSS_JOIN_LUA), uri, ca])
    j.wait_line(r"^CA CONNECTED$", 10)
    j.wait_line(r"^CA GOT hello$", 10)
    j.wait_line(r"^CA GOT \?bin$", 10)
    j.wait_line(r"^NOCA CLOSED TLS handshake failed: certificate verify failed", 10)
