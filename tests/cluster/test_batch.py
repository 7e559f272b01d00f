"""BATCH frames (proto/WIRE.md, kind 18): bursts across nodes keep their order per sender and
are delivered at most once, whatever the batch sizes; a batch is checked frame by frame
exactly as lone frames are, so a forged envelope inside one is refused and the rest of the
batch, and the node, go on."""
import re

from harness import (K_MESSAGE, K_WELCOME, K_HELLO, RawPeer, check, converged, frame,
                     hello_fields, need_zmq, snapshot, timeout, wait_until, Bin)
from test_hostile import check_serves, serving_node

K_BATCH = 18

# The sink counts what each sender sent it and watches the numbers: one lower than or equal
# to the last is a duplicate or out of order (ORDER), one more than a step ahead a message
# lost (GAP). A request is answered with its number and the count so far.
SINK_LUA = r"""
local last, count = {}, {}
stage.waitfor("n", function (who, i, pad)
  local l = last[who] or 0
  if i <= l then print("ORDER " .. who .. " " .. l .. " then " .. i)
  elseif i > l + 1 then print("GAP " .. who .. " " .. l .. " then " .. i) end
  last[who], count[who] = i, (count[who] or 0) + 1
  return i, count[who]
end)
"""

# Each sender sends N numbered messages to the sink on A, in bursts of up to 500 from one
# handler (so the loop thread finds many queued at once: they go in batches): one-way,
# except every tenth, a request (those go straight out when the loop thread is idle, else
# batched with the rest), with payloads of 8 B, 900 B and now and then 70 KB (over
# batch_max: a frame that goes alone, between batches). A message refused locally (its peer
# queue full) is sent again later, so the sender never skips a number. Replies must come
# back in order; the answer to the last message (a request) says how many the sink got,
# all of them having been handled before it (one sink actor, order per pair).
SENDER_LUA = r"""
local N, BURST = %d, 500
local sent, acks, errs, lastack, badack = 0, 0, 0, 0, 0
local pads = {("s"):rep(8), ("m"):rep(900), ("L"):rep(70000)}
stage.waitfor("ack", function (i, got)
  if i == nil then errs = errs + 1 print("ERR " .. tostring(got)) return end
  if i <= lastack then badack = badack + 1 end
  lastack, acks = i, acks + 1
  if i == N then print("DONE " .. acks .. " " .. errs .. " " .. badack .. " " .. got) end
end)
when_ready("sink", {"A"}, function ()
  stage.addtask(0, function ()
    local k = 0
    while sent < N and k < BURST do
      local i = sent + 1
      local pad = pads[i %% 997 == 5 and 3 or (i %% 7 == 3 and 2 or 1)]
      local to = i %% 10 == 0 and "sink:n=ack" or "sink:n"
      if stage.signal(to, process.name, i, pad) == 0 then return 5 end
      sent, k = i, k + 1
    end
    if sent < N then return 1 end
  end)
end)
"""


@timeout(180)
def test_bursts_across_nodes_keep_order_without_duplicates(ctx):
    n = 6000
    sink = ctx.script("sink.lua", SINK_LUA)
    sender = ctx.script("sender.lua", SENDER_LUA % n)
    a = ctx.node("A", actors=[("sink", sink, 1)])
    # B cuts its batches small (many cuts, and the 70 KB frames always go alone); C keeps
    # the default
    b = ctx.node("B", join=[a], script=sender, sets={"batch_max": 4096})
    c = ctx.node("C", join=[a], script=sender)
    converged([a, b, c], 20)
    for s in (b, c):
        line = s.wait_line(r"^DONE ", 150)[0]
        acks, errs, badack, got = (int(x) for x in line.split()[1:])
        check(acks == n // 10 and errs == 0, "%s: %d answers and %d errors for %d requests"
              % (s.name, acks, errs, n // 10))
        check(badack == 0, "%s: %d replies came back out of order" % (s.name, badack))
        check(got == n, "%s: the sink got %d of %d messages" % (s.name, got, n))
        gaps = [l for l in a.lines() if l.startswith("GAP %s " % s.name)]
        check(not gaps, "%s: messages lost: %r" % (s.name, gaps[:5]))
    order = [l for l in a.lines() if l.startswith("ORDER")]
    check(not order, "duplicates or reordering at the sink: %r" % order[:10])
    dups = a.metric("stage_wire_refused_total", reason="duplicate")
    check(not dups, "A dropped %r duplicate frames" % dups)
    for s in (a, b, c):
        s.ensure_alive()
    # the bursts did travel in batches: far fewer ZeroMQ messages than requests (about 1 in
    # 15 with batch_max 4096, 1 in 60 with the default, in the runs this was written with)
    for s in (b, c):
        out = s.metric("stage_wire_messages_total", direction="out")
        check(out is not None and out < n, "%s sent %r ZeroMQ messages for %d requests: "
              "no batching" % (s.name, out, n))
        check(not [l for l in s.lines() if l.startswith("ERR ")], "%s: error replies: %r"
              % (s.name, [l for l in s.lines() if l.startswith("ERR ")][:5]))


def _curve_peer(ctx, a, name):
    """A raw authenticated member `name` of A's cluster, welcomed."""
    import test_attack
    peer = RawPeer(ctx, a.endpoint, curve_server_key=test_attack._keypair(ctx, "A")[0],
                   curve_keypair=test_attack._keypair(ctx, name))
    peer.send(frame(K_HELLO, hello_fields("stage", name, 1, "tcp://127.0.0.1:9", flags=8)))
    check(peer.recv_kind({K_WELCOME}, 5) is not None, "A welcomes %s" % name)
    return peer


def _run(src, seq, tag):
    """A MESSAGE from node src to A's stage pa, running its handler `run` with tag."""
    return frame(K_MESSAGE, {1: {1: src, 2: 1, 3: 1, 4: "raw"}, 2: {1: "A", 4: "pa"}, 3: 0,
                             4: "run", 7: seq, 9: snapshot(tag)})


def batch(frames):
    """A BATCH frame holding frames (each a complete frame, as bin)."""
    from harness import mp_pack
    return bytes([0xC1, 1, K_BATCH]) + mp_pack({1: [Bin(f) for f in frames]})


@timeout(90)
def test_forged_envelope_inside_a_batch_is_refused(ctx):
    need_zmq()
    ctx.curve_allow(["A", "B", "C", "M"])  # M: an authenticated member that turns hostile
    a = serving_node(ctx, curve=True)
    a.wait_stderr(r"listening", 10)
    b = check_serves(ctx, a, "B", curve=True)
    converged([a, b], 20)
    peer = _curve_peer(ctx, a, "M")
    before = a.metric("stage_wire_refused_total", reason="identity") or 0
    # one batch: M's own message, one claiming to come from B, M's own again
    peer.send(batch([_run("M", 1, "own-1"), _run("B", 2, "forged-as-B"),
                     _run("M", 3, "own-2")]))
    a.wait_line(r"^RAN own-2$", 10)
    ran = [l for l in a.lines() if l.startswith("RAN ")]
    check(ran == ["RAN own-1", "RAN own-2"], "A ran %r: M's two, in order, and not the "
          "forged one" % ran)
    wait_until(lambda: (a.metric("stage_wire_refused_total", reason="identity") or 0)
               == before + 1, 10, "the forged envelope counted as refused (identity)")
    check("claims to come from 'B'" in a.stderr(), "A logged the refusal:\n%s"
          % a.stderr()[-2000:])
    # what may not travel in a batch is refused alone: a HELLO, a BATCH inside a BATCH (the
    # whole outer batch), a malformed entry (the whole batch, before any of it runs)
    bad0 = a.metric("stage_wire_refused_total", reason="malformed") or 0
    peer.send(batch([frame(K_HELLO, hello_fields("stage", "M", 1, "tcp://127.0.0.1:9")),
                     _run("M", 4, "after-hello")]))
    peer.send(batch([_run("M", 5, "nested-outer"),
                     batch([_run("M", 6, "nested-1"), _run("M", 7, "nested-2")])]))
    peer.send(batch([_run("M", 8, "before-junk"), b"\xc1\x01\x06\xdf\xff\xff\xff\xff"])[:-4])
    peer.send(batch([_run("M", 9, "last-1"), _run("M", 10, "last-2")]))
    a.wait_line(r"^RAN last-2$", 10)
    ran = [l for l in a.lines() if l.startswith("RAN ")]
    check(ran == ["RAN own-1", "RAN own-2", "RAN after-hello", "RAN last-1", "RAN last-2"],
          "A ran %r" % ran)
    wait_until(lambda: (a.metric("stage_wire_refused_total", reason="malformed") or 0)
               >= bad0 + 3, 10, "the HELLO, the nested batch and the cut batch refused")
    log = a.stderr()
    check(re.search(r"HELLO inside a BATCH", log), "A logged the HELLO inside a batch")
    check(re.search(r"BATCH inside a BATCH", log), "A logged the nested batch")
    a.ensure_alive()
    check_serves(ctx, a, "C", curve=True)  # and A goes on serving
