"""Chaos: the failures issue 11 found with kill -9, SIGSTOP and restarts, one per test.

  * a REPLY to a peer this node believes down still goes out (the request was handled);
  * a freshly started node suspects no peer while it is still greeting them;
  * a restarted peer does not make the others count every frame sent to its predecessor
    as a sequence gap;
  * requests pending at an incarnation that restarted faster than failure detection are
    answered "node down" at once, not by the reply timeout;
  * a dead member is forgotten after `forget` ms, and its name can come back as a new
    incarnation (an old one cannot)."""
import time

from harness import (K_ERROR, K_HELLO, K_WELCOME, RawPeer, check, converged, fail, frame,
                     free_port, hello_fields, start_cluster, timeout, wait_until)


# ---------------------------------------------------------------- a. reply to a "down" peer

# Handles one request slowly: until the harness creates the release file (bounded).
SLOW_LUA = r'''
stage.waitfor("x", function ()
  print("HANDLING")
  local t = os.clock()
  while os.clock() - t < 40 do
    local f = io.open("%(release)s", "r")
    if f then f:close(); break end
  end
  print("DONE")
  return "done by " .. process.name
end)
'''

REQ_DRIVER = r'''
stage.waitfor("r", function (...) print("R " .. show(...)) end)
when_ready("slow", {"B"}, function ()
  print("READY")
  when_file("%(go)s", function () stage.signal("slow:x=r"); print("SENT") end)
end)
'''


@timeout(75)
def test_reply_reaches_peer_believed_down(ctx):
    """A's request is handled on B while A is frozen (SIGSTOP) long enough for B to mark it
    down; B's REPLY must still reach A once it runs again, long before the reply timeout."""
    release = ctx.path("release")
    slow = ctx.script("slow.lua", SLOW_LUA % {"release": release})
    drv = ctx.script("driver.lua", REQ_DRIVER % {"go": ctx.path("go")})
    # A's own failure detection is slower than B's: on resuming, A must not conclude
    # from its own pause that B died (that is another question); B marks A down.
    a, b = start_cluster(ctx, [
        ("A", dict(script=drv, sets={"reply_timeout": 15000, "suspect": 10000,
                                     "down": 10000})),
        ("B", dict(sets={"reply_timeout": 15000}, actors=[("slow", slow, 1)],
                   extra=["--stage", "slow:budget=60"]))])
    a.wait_line(r"^READY$", 20)
    ctx.touch("go")
    a.wait_line(r"^SENT$", 10)
    b.wait_line(r"^HANDLING$", 10)
    a.stop()
    b.wait_member_state("A", "down", 15)      # B now believes the requester down
    ctx.touch("release")
    b.wait_line(r"^DONE$", 10)
    time.sleep(1.0)                            # B's REPLY goes out (or not) while A is down
    check(b.members()["A"]["state"] == "down", "B still sees A down when it replies: %r"
          % b.members()["A"])
    a.cont()
    t0 = time.monotonic()
    r = a.wait_line(r"^R ", 25)[0]
    took = time.monotonic() - t0
    check(r == "R done by B", "A gets B's reply to its handled request, not a failure: %r"
          % r)
    check(took < 8.0, "the reply came %.1f s after A resumed (reply_timeout 15 s)" % took)
    converged([a, b], 15)


# ---------------------------------------------------------------- b. no suspicion at start

@timeout(100)
def test_fresh_node_suspects_nobody(ctx):
    """A node started with heartbeat 200 ms and suspect/down 1 s, joining a running
    3-node cluster, marks no peer suspect in its first 3 s; 10 starts, each after the
    previous process was killed and stayed dead a while (0.5 to 4.5 s: the peers' own
    reconnection attempts to it back off meanwhile, as they do in a cluster with churn)."""
    nodes = start_cluster(ctx, [("A", {}), ("B", {}), ("C", {})])
    d = ctx.node("D", join=[nodes[0]], start=False,
                 sets={"heartbeat": 200, "suspect": 1000, "down": 1000})
    dead_for = [0.5, 1.5, 3.0, 4.5]
    bad = []
    for i in range(10):
        d.start()
        time.sleep(3.0)
        d.ensure_alive()
        marks = [l for l in d.stderr().splitlines() if "-> suspect" in l or "-> down" in l]
        if marks:
            bad.append("start %d: %s" % (i + 1, "; ".join(m.split("] ", 2)[-1]
                                                       for m in marks[:4])))
        ms = d.members()
        check(set(ms) >= {"A", "B", "C", "D"}, "start %d: D knows A, B, C after 3 s: %r"
              % (i + 1, {k: v["state"] for k, v in ms.items()}))
        if i < 9:
            d.kill9()
            time.sleep(dead_for[i % len(dead_for)])
    check(not bad, "a fresh node marked peers suspect/down within 3 s of its start in %d "
          "of 10 starts: %s" % (len(bad), bad))


# ---------------------------------------------------------------- c. gaps after a restart

W_LUA = r'''
local n = 0
stage.waitfor("hit", function ()
  n = n + 1
  if n % 100 == 0 then print("COUNT " .. n) end
end)
'''

# Sends `total` one-way messages to w on B, as fast as the outbox takes them (a full
# peer queue answers 0: that one is sent again on the next tick).
GAP_DRIVER = r'''
local function pump(total, tag)
  local sent = 0
  stage.addtask(10, function ()
    while sent < total do
      if stage.signal("w:hit") ~= 1 then return 20 end
      sent = sent + 1
    end
    print(tag)
    return nil
  end)
end
when_file("%(go1)s", function ()
  when_ready("w", {"B"}, function () pump(%(n1)d, "SENT1") end)
end)
when_file("%(go2)s", function ()
  when_ready("w", {"B"}, function () pump(%(n2)d, "SENT2") end)
end)
'''


def _gaps(n):
    v = n.metric("stage_wire_seq_gaps_total")
    check(v is not None, "%s exports stage_wire_seq_gaps_total" % n.name)
    return v


@timeout(75)
def test_restart_keeps_gap_count_true(ctx):
    """2,000 messages A -> B, B restarts (new incarnation), 200 more: the gap counters of
    the nodes must not jump by the frames sent to the old B."""
    n1, n2 = 2000, 200
    w = ctx.script("w.lua", W_LUA)
    drv = ctx.script("driver.lua", GAP_DRIVER % {"go1": ctx.path("go1"), "go2": ctx.path("go2"),
                                                  "n1": n1, "n2": n2})
    # A sends its 2,000 in one burst: its queue to B must hold them all (peer_queue), or
    # some sends answer "mailbox full" and B never counts 2,000.
    a, b, c = start_cluster(ctx, [("A", dict(script=drv, sets={"peer_queue": 5000})),
                                  ("B", dict(actors=[("w", w, 1)])), ("C", {})])
    old = converged([a, b, c])["B"]
    ctx.touch("go1")
    a.wait_line(r"^SENT1$", 20)
    b.wait_line(r"^COUNT %d$" % n1, 30)
    before = {n.name: _gaps(n) for n in (a, b, c)}
    b.kill9()
    b.start()
    wait_until(lambda: all((lambda m: m and m["state"] == "alive" and m["incarnation"] != old)(
        n.members().get("B")) for n in (a, c)), 20, "A and C to see B's new incarnation alive")
    ctx.touch("go2")
    a.wait_line(r"^SENT2$", 20)
    b.wait_line(r"^COUNT %d$" % n2, 20)
    time.sleep(0.5)
    after = {n.name: _gaps(n) for n in (a, b, c)}
    jump = {k: after[k] - before.get(k, 0) for k in after}
    check(all(j < 50 for j in jump.values()),
          "stage_wire_seq_gaps_total jumped after B's restart (before %r, after %r): %d frames "
          "went to the old B, none was lost" % (before, after, n1))


# ---------------------------------------------------------------- d. pending at a restart

HOLD_LUA = r'''
stage.waitfor("x", function ()
  print("HOLDING")
  local t = os.clock()
  while os.clock() - t < 120 do end
  return "never"
end)
'''

PENDING_DRIVER = r'''
stage.waitfor("r", function (...)
  print("R " .. show(...))
end)
when_ready("hold", {"B"}, function ()
  for i = 1, 3 do stage.signal("hold:x=r", i) end
  print("SENT")
end)
'''


@timeout(60)
def test_restart_fails_pending_at_once(ctx):
    """B holds 3 requests from A, is killed and restarted before failure detection could
    notice (suspect + down = 10 s); A's 3 requests answer nil, "node down" as soon as A
    learns of the new incarnation, not after the 30 s reply timeout."""
    sets = {"heartbeat": 200, "suspect": 5000, "down": 5000, "reply_timeout": 30000}
    hold = ctx.script("hold.lua", HOLD_LUA)
    drv = ctx.script("driver.lua", PENDING_DRIVER)
    a, b = start_cluster(ctx, [
        ("A", dict(script=drv, sets=sets)),
        ("B", dict(sets=sets, actors=[("hold", hold, 1)],
                   extra=["--stage", "hold:budget=300"]))])
    old = converged([a, b])["B"]
    a.wait_line(r"^SENT$", 20)
    b.wait_line(r"^HOLDING$", 10)
    time.sleep(0.3)
    b.kill9()
    t0 = time.monotonic()
    b.start()
    wait_until(lambda: (lambda m: m and m["incarnation"] != old)(a.members().get("B")), 10,
               "A to learn B's new incarnation")
    seen = time.monotonic() - t0
    check(seen < 8.0, "A learned B's new incarnation %.1f s after the kill: before failure "
          "detection (10 s), as this test needs" % seen)
    check(a.members()["B"]["state"] == "alive", "A never saw B down: %r" % a.members()["B"])
    try:
        got = a.wait_line(r"^R ", 12, count=3)
    except AssertionError:
        fail("A's 3 requests pending at B's old incarnation were not answered within 12 s "
             "of the kill (A learned the new incarnation after %.1f s; reply_timeout is 30 s,"
             " detection 10 s): %r" % (seen, [l for l in a.lines() if l.startswith("R ")]))
    took = time.monotonic() - t0
    check(all(g == "R nil node down" for g in got),
          "the 3 requests pending at B's old incarnation answer nil, 'node down': %r" % got)
    check(took < seen + 3.0, "they were answered %.1f s after the kill, %.1f s after A learned "
          "the new incarnation (reply_timeout 30 s, detection 10 s)" % (took, seen))


# ---------------------------------------------------------------- e. reaping

@timeout(75)
def test_dead_member_forgotten_name_comes_back(ctx):
    """With forget=3000 a killed node leaves the others' member lists about down + 3 s
    after its death; a replayed HELLO of its old incarnation is not admitted; the same name
    restarted (a new incarnation) is admitted."""
    sets = {"forget": 3000}
    a, b, c = start_cluster(ctx, [("A", dict(sets=sets)), ("B", dict(sets=sets)),
                                  ("C", dict(sets=sets))])
    old = converged([a, b, c])["C"]
    c.kill9()
    killed = time.monotonic()
    a.wait_member_state("C", "down", 10)
    down_at = time.monotonic()
    b.wait_member_state("C", "down", 5)

    def gone():
        return all("C" not in n.members() for n in (a, b))
    wait_until(gone, 15, "A and B to forget C (forget=3000 ms after down)", interval=0.2)
    gone_at = time.monotonic()
    check(gone_at - down_at >= 2.0, "C was forgotten %.1f s after A saw it down; forget is "
          "3 s" % (gone_at - down_at))
    check(gone_at - killed <= 2.6 + 3.0 + 4.0, "C was forgotten %.1f s after its death "
          "(detection about 2.4 s + forget 3 s)" % (gone_at - killed))
    time.sleep(1.5)   # the survivors do not gossip the forgotten member back
    check(gone(), "C stays forgotten: A %r, B %r" % (sorted(a.members()), sorted(b.members())))

    # C's old incarnation says HELLO again (a replay): it must not come back
    peer = RawPeer(ctx, a.endpoint)
    peer.send(frame(K_HELLO, hello_fields("stage", "C", old, "tcp://127.0.0.1:%d"
                                          % free_port())))
    peer.recv_kind({K_WELCOME, K_ERROR}, 3)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        for n in (a, b):
            m = n.members().get("C")
            if m and m["incarnation"] == old and m["state"] == "alive":
                fail("%s admitted C's old incarnation %r again: %r" % (n.name, old, m))
        time.sleep(0.2)
    peer.close()

    # the same name restarted is a new incarnation, admitted
    c.start()
    incs = converged([a, b, c], 25)
    check(incs["C"] > old, "C's new incarnation %r is above the old %r" % (incs["C"], old))
