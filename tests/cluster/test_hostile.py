"""Hostile peers: garbage, connect-and-stall floods, version mismatch, oversized frames,
CurveZMQ authentication."""
import os
import random
import socket
import time

from harness import (K_ERROR, K_HELLO, K_MESSAGE, K_WELCOME, RawPeer, check, 
                     fail, frame, free_port, hello_fields, need_zmq, snapshot, timeout,
                     wait_until, unframe)

PA_LUA = r'''
stage.waitfor("ping", function (v) return "pong " .. tostring(v) .. " from " .. process.name end)
stage.waitfor("run", function (tag) print("RAN " .. tostring(tag)) end)
'''

CHECKER_LUA = r'''
stage.waitfor("pong", function (...) print("PONG " .. show(...)) end)
when_ready("pa", {"A"}, function () stage.signal("pa:ping=pong", 1) end)
'''


def serving_node(ctx, **kw):
    pa = ctx.script("pa.lua", PA_LUA)
    return ctx.node("A", actors=[("pa", pa, 1)], **kw)


def check_serves(ctx, a, name, **kw):
    """A new node joins `a` and makes a round trip to a's stage pa."""
    drv = ctx.script("checker-%s.lua" % name, CHECKER_LUA)
    n = ctx.node(name, join=[a], script=drv, **kw)
    line = n.wait_line(r"^PONG ", 20)[0]
    check(line == "PONG pong 1 from A", "%s round trip to A: %r" % (name, line))
    return n


@timeout(60)
def test_garbage_on_cluster_port(ctx):
    a = serving_node(ctx)
    a.wait_stderr(r"listening", 10)
    rnd = random.Random(7)
    payloads = [bytes(rnd.getrandbits(8) for _ in range(4096)),
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f" + b"\x03\x00NULL" + b"\0" * 100,
                b"\xff" * 64 + b"\x00" * 64,
                b"\xc1\x01\x01" + b"\xdf\xff\xff\xff\xff"]   # a bare frame, no ZMTP
    for i in range(50):
        for p in payloads:
            s = socket.create_connection(("127.0.0.1", a.port), 2)
            try:
                s.sendall(p)
            except OSError:
                pass
            s.close()
    time.sleep(0.5)
    a.ensure_alive()
    check_serves(ctx, a, "B")
    st = a.status()
    check(st["node"] == "A", "A still answers /status.json")


@timeout(90)
def test_connect_and_stall_flood_keeps_fds_flat(ctx):
    a = serving_node(ctx)
    a.wait_stderr(r"listening", 10)
    check_serves(ctx, a, "B")           # steady state: one peer connected
    time.sleep(1.0)
    before = a.fds()
    greeting = b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f"   # ZMTP signature, no more
    total, batch, t0 = 10000, 100, time.monotonic()
    done = 0
    while done < total:
        check(time.monotonic() - t0 < 60, "the flood loop is over its 60 s bound at %d"
              % done)
        socks = []
        for i in range(batch):
            try:
                s = socket.create_connection(("127.0.0.1", a.port), 2)
            except OSError as e:
                fail("connection %d refused by A: %s" % (done + i, e))
            if (done + i) % 3 == 1:
                s.sendall(greeting)
            elif (done + i) % 3 == 2:
                s.sendall(greeting[:5])
            socks.append(s)
        time.sleep(0.005)               # stall a moment with the batch open
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST
            s.close()
        done += batch
    a.ensure_alive()

    def flat():
        return a.fds() <= before + 5
    wait_until(flat, 15, "A's open fds to come back near %d (now %d)" % (before, a.fds()),
               interval=0.5)
    after = a.fds()
    check(after <= before + 5, "A's fds: %d before, %d after 10,000 stalls" % (before, after))
    check_serves(ctx, a, "C")


@timeout(60)
def test_protocol_version_mismatch(ctx):
    """A HELLO of version 2 is refused and logged; so is a seed answering version 2."""
    a = serving_node(ctx)
    a.wait_stderr(r"listening", 10)
    peer = RawPeer(ctx, a.endpoint)
    peer.send(frame(K_HELLO, hello_fields("stage", "future", 1, "tcp://127.0.0.1:1"),
                    version=2))
    got = peer.recv_kind({K_WELCOME, K_ERROR}, 3)
    check(got is None or got[1] != K_WELCOME, "no WELCOME for a version-2 HELLO: %r" % (got,))
    if got is not None:
        check(got[0] == 1 and got[2].get(1) == 3,
              "the refusal is an ERROR VERSION (3) in version 1: %r" % (got,))
    a.wait_stderr(r"protocol version", 10)
    check("future" not in a.members(), "the version-2 peer is not a member")

    # the other side: a stage-node joining a seed that answers in version 2
    zmq = need_zmq()
    fake = zmq.Context.instance().socket(zmq.ROUTER)
    fake.setsockopt(zmq.LINGER, 0)
    ctx.add_cleanup(lambda: fake.close(0))
    fport = free_port()
    fake.bind("tcp://127.0.0.1:%d" % fport)
    j = ctx.node("J", join=["127.0.0.1:%d" % fport])
    if not fake.poll(10000):
        fail("the joining node never sent its HELLO to the fake seed")
    ident, data = fake.recv_multipart()[-2:] if False else (lambda m: (m[0], m[-1]))(
        fake.recv_multipart())
    v, k, f = unframe(data)
    check(v == 1 and k == K_HELLO, "the joiner's first frame is a version-1 HELLO: %r"
          % ((v, k),))
    fake.send_multipart([ident, frame(2, {1: "stage", 2: "future", 3: 1, 4: 2,
                                          5: "tcp://127.0.0.1:%d" % fport}, version=2)])
    j.wait_stderr(r"protocol version", 10)
    check("future" not in j.members(), "the joiner did not merge with a version-2 seed")


@timeout(60)
def test_oversized_frame_cuts_off_that_peer(ctx):
    cap = 262144
    a = serving_node(ctx, sets={"frame_max": cap})
    a.wait_stderr(r"listening", 10)
    b = check_serves(ctx, a, "B", sets={"frame_max": cap})
    zmq = need_zmq()
    peer = RawPeer(ctx, a.endpoint)
    me = "big-%d" % free_port()
    peer.send(frame(K_HELLO, hello_fields("stage", me, 1, "tcp://127.0.0.1:%d" % free_port())))
    got = peer.recv_kind({K_WELCOME, K_ERROR}, 10)
    check(got is not None and got[1] == K_WELCOME, "A welcomes the raw peer: %r" % (got,))
    check(peer.wait_event(zmq.EVENT_CONNECTED, 2), "raw peer connected")
    big = frame(K_MESSAGE, {1: {1: me, 2: 1, 3: 1, 4: "raw"}, 2: {1: "A", 4: "pa"}, 3: 0,
                            4: "run", 7: 1, 9: snapshot("x" * (cap + 1000))})
    check(len(big) > cap, "the frame is over the cap")
    peer.send(big)
    check(peer.wait_event(zmq.EVENT_DISCONNECTED, 10),
          "A cut off the peer that sent %d bytes (cap %d); events %r"
          % (len(big), cap, peer.events))
    check(not any(l.startswith("RAN") for l in a.lines()), "the oversized message never ran")
    # the others are still served
    check_serves(ctx, a, "C", sets={"frame_max": cap})
    a.ensure_alive()
    b.ensure_alive()
    check(a.members()["B"]["state"] == "alive", "B stays alive in A's view")


def _keygen(ctx, name):
    path = os.path.join(ctx.tmp, name + ".key")
    r = ctx.run([ctx.binary, "keygen", path], timeout=10)
    check(r.returncode == 0, "stage-node keygen %s: %s" % (path, r.stderr.decode()))
    check(os.path.exists(path) and os.path.exists(path + ".pub"), "keygen wrote FILE and FILE.pub")
    return path, open(path + ".pub").read().strip()


def _z85_key(text):
    """A public key file's content as the 40-character Z85 form pyzmq takes."""
    need_zmq()
    from zmq.utils import z85
    t = text.split()[-1] if text.split() else text
    if len(t) == 40:
        return t.encode()
    if len(t) == 64:
        return z85.encode(bytes.fromhex(t))
    fail("cannot read the public key file content %r (not Z85 or hex)" % text[:80])


@timeout(60)
def test_curve_refuses_unauthenticated_peers(ctx):
    zmq = need_zmq()
    # Each node has its own keypair; the allow file maps public keys to node names
    # ("KEY NAME"), here A and B. C has a keypair of its own that is not listed.
    ctx.curve_allow(["A", "B"])
    pa = ctx.curve_public("A")
    a = serving_node(ctx, curve=True)
    a.wait_stderr(r"listening", 10)
    # positive control: B (its own key, listed as B) joins and makes a round trip
    check_serves(ctx, a, "B", curve=True)
    n_err = len(a.stderr())

    # 1. NULL mechanism: a plain DEALER
    p1 = RawPeer(ctx, a.endpoint)
    p1.send(frame(K_HELLO, hello_fields("stage", "nullpeer", 1, "tcp://127.0.0.1:1")))
    p1.send(frame(K_MESSAGE, {1: {1: "nullpeer", 2: 1, 3: 1, 4: "raw"}, 2: {1: "A", 4: "pa"},
                              3: 0, 4: "run", 7: 1, 9: snapshot("null")}))
    check(p1.recv_kind({K_WELCOME}, 3) is None, "no WELCOME for a NULL-mechanism peer")

    # 2. CURVE with a key that is not in the allow list
    pub, sec = zmq.curve_keypair()
    p2 = RawPeer(ctx, a.endpoint, curve_server_key=_z85_key(pa), curve_keypair=(pub, sec))
    p2.send(frame(K_HELLO, hello_fields("stage", "stranger", 1, "tcp://127.0.0.1:1")))
    p2.send(frame(K_MESSAGE, {1: {1: "stranger", 2: 1, 3: 1, 4: "raw"}, 2: {1: "A", 4: "pa"},
                              3: 0, 4: "run", 7: 1, 9: snapshot("stranger")}))
    check(p2.recv_kind({K_WELCOME}, 3) is None, "no WELCOME for an unknown CURVE key")

    # 3. a real node with its own key, not listed
    allow_c = ctx.write("allow-c", "%s A\n%s C\n" % (pa, ctx.curve_public("C")))
    c = ctx.node("C", join=["A@" + a.addr],
                 extra=["--curve-secret", ctx.curve_key("C"), "--curve-allow", allow_c])
    time.sleep(3.0)
    check(set(a.members()) == {"A", "B"}, "A's members stay A, B: %r" % list(a.members()))
    check("A" not in c.members(), "C never became a member of A's cluster")
    log = a.stderr()[n_err:]
    import re
    refusals = re.findall(r"(?i).*(refus|denied|not allowed|unknown key|unauthori|zap).*", log)
    check(refusals, "A logged the refused peers; A's log since:\n%s" % log[-2000:])
    check(not any(l.startswith("RAN") for l in a.lines()),
          "nothing an unauthenticated peer sent ran: %r" % a.lines())
