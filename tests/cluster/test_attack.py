"""The attack kit against real nodes (issue 12): forged frames of every kind, with and
without CurveZMQ, from loopback and from another address (a network namespace). The suite
shows that no code runs unless an authenticated member sent it, that no member's state or
routes can be moved by anyone but that member, and that the node keeps serving."""
import os
import sys
import time

from harness import Node, RawPeer, check, converged, free_port, need_zmq, timeout, wait_until
from test_hostile import PA_LUA, check_serves

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "attack"))
import forge  # noqa: E402

# The victim runs whatever it is given: a handler that calls every function it receives (a
# trusted member's code must run: the positive control), and collects garbage often, so a
# __gc in a received metatable would run without being called.
VICTIM_LUA = r'''
local function run_all(v, depth)
  if depth > 4 then return end
  if type(v) == "function" then pcall(v)
  elseif type(v) == "table" then for _, x in pairs(v) do run_all(x, depth + 1) end end
end
stage.waitfor("call", function (...)
  for i = 1, select("#", ...) do run_all(select(i, ...), 0) end
end)
stage.addtask(100, function () collectgarbage(); collectgarbage(); return 100 end)
'''

# B pings A's stage pa every 200 ms: its pongs show B's frames still reach A.
PINGER_LUA = r'''
local n = 0
stage.waitfor("pong", function (v) print("PONG " .. tostring(v)) end)
when_ready("pa", {"A"}, function ()
  stage.addtask(200, function () n = n + 1; stage.signal("pa:ping=pong", n); return 200 end)
end)
'''


def _victims(ctx, curve=False, host="127.0.0.1", netns=None, insecure=False, a_lua=None,
             b_lua="", a_prefix=()):
    """A (stages victim and pa; a_lua its script, a_prefix a command put before it) and B
    (stage victim, pinging A; b_lua added to its script), converged, B's pings answered."""
    victim = ctx.script("victim.lua", VICTIM_LUA)
    pa = ctx.script("pa.lua", PA_LUA)
    pinger = ctx.script("pinger.lua", PINGER_LUA + b_lua)
    a = ctx.node("A", actors=[("victim", victim, 1), ("pa", pa, 1)], curve=curve,
                 host=host, netns=netns, insecure=insecure, port=7400 if netns else None,
                 script=ctx.script("a.lua", a_lua) if a_lua else None, start=False)
    argv = a.argv
    a.argv = lambda: list(a_prefix) + argv()
    a.start()
    b = ctx.node("B", join=[a], actors=[("victim", victim, 1)], script=pinger, curve=curve,
                 host=host, netns=netns, insecure=insecure, port=7401 if netns else None)
    converged([a, b], 20)
    b.wait_line(r"^PONG ", 20)
    return a, b


def _pongs(b):
    return len([l for l in b.lines() if l.startswith("PONG ")])


def _keypair(ctx, name):
    """(public, secret) Z85 bytes of node name's key file, as pyzmq takes them."""
    return forge.read_keypair(ctx.curve_key(name))


def _no_code_ran(path, nodes):
    check(not os.path.exists(path), "forged code ran: %s exists (%r)" %
          (path, open(path).read() if os.path.exists(path) else ""))
    for n in nodes:
        check(not any("PWNED" in l for l in n.lines()), "%s printed PWNED" % n.name)


def _send_refused(peer, frames):
    """Sends frames from a peer the node refuses at the handshake (ZAP, or a mechanism
    mismatch): its DEALER may never have a connection to send on, and a send would block,
    so each gives up after 200 ms. Whatever went out must have been ignored."""
    zmq = need_zmq()
    peer.sock.setsockopt(zmq.SNDTIMEO, 200)
    for data in frames:
        try:
            peer.send(data)
        except zmq.Again:
            pass


def _send_all(peer, frames):
    for data in frames.values():
        peer.send(data)


@timeout(90)
def test_no_code_without_curve_from_loopback(ctx):
    need_zmq()
    a, b = _victims(ctx)
    inc_b = a.members()["B"]["incarnation"]
    path = os.path.join(ctx.tmp, "pwned")
    peer = RawPeer(ctx, a.endpoint)
    for what, payload in forge.code_payloads(path).items():
        # as a stranger, as member B (a grant for B would be relayed by A), and as A itself
        for claim, inc in (("M", 1), ("B", inc_b), ("A", 1)):
            _send_all(peer, forge.forged_frames(claim, inc, "A", payload))
    time.sleep(2.0)
    _no_code_ran(path, [a, b])
    a.ensure_alive()
    b.ensure_alive()
    refused = a.stderr()
    check("untrusted" in refused or "refused" in refused,
          "A said it refused the code; its log:\n%s" % refused[-3000:])
    # still serving: a new node joins and makes a round trip
    check_serves(ctx, a, "C")


@timeout(90)
def test_refused_code_is_logged_at_a_bounded_rate(ctx):
    """A peer decides how often a message is dropped for carrying code: 300 such messages
    in a burst must not write 300 log lines (one a second per actor, then a count)."""
    need_zmq()
    a, b = _victims(ctx)
    path = os.path.join(ctx.tmp, "pwned")
    payload = forge.code_payloads(path)[sorted(forge.code_payloads(path))[0]]
    peer = RawPeer(ctx, a.endpoint)
    for seq in range(1, 301):  # each a new sequence number: none is a duplicate
        peer.send(forge.frame(forge.K["MESSAGE"], {1: forge.addr("M", 1, 1, "evil"),
                                                   2: forge.addr("A", 0, 0, "victim"),
                                                   4: "call", 7: seq, 8: 1, 9: payload}))
    time.sleep(2.0)
    _no_code_ran(path, [a, b])
    lines = [l for l in a.stderr().splitlines() if "dropped:" in l]
    check(0 < len(lines) <= 12, "A logged %d 'dropped' lines for 300 refused messages "
          "(at most one a second per actor, then a count):\n%s" % (len(lines),
                                                                  "\n".join(lines[:20])))
    a.ensure_alive()


# After the forged frames, B starts a new stage (its next REGISTRY, a higher version than
# before but far below the forged 2^64-1), and A must route to it: a forged registry version
# taken as B's would have frozen B's routes in A's view.
LATE_B_LUA = r'''
when_file(%r, function ()
  stage.spawn("late", function ()
    stage.waitfor("__ready", function () return process.name end)
    stage.waitfor("ping", function (v)
      return "late " .. tostring(v) .. " from " .. process.name
    end)
  end)
end)
'''
LATE_A_LUA = r'''
stage.waitfor("late_pong", function (v) print("LATE " .. tostring(v)) end)
when_file(%r, function ()
  when_ready("late", {"B"}, function () stage.signal("late:ping=late_pong", 1) end)
end)
'''


@timeout(90)
def test_members_cannot_move_others_with_curve(ctx):
    zmq = need_zmq()
    ctx.curve_allow(["A", "B", "C", "M"])  # M: an authenticated member that turns hostile
    late = os.path.join(ctx.tmp, "late")
    a, b = _victims(ctx, curve=True, a_lua=LATE_A_LUA % late, b_lua=LATE_B_LUA % late)
    before = a.members()["B"]
    path = os.path.join(ctx.tmp, "pwned")
    pub_a = _keypair(ctx, "A")[0]
    peer = RawPeer(ctx, a.endpoint, curve_server_key=pub_a, curve_keypair=_keypair(ctx, "M"))
    peer.send(forge.frame(forge.K["HELLO"], forge.hello_fields("stage", "M", 1,
                                                               "tcp://127.0.0.1:9")))
    check(peer.recv_kind({forge.K["WELCOME"]}, 5) is not None, "A welcomes M (listed)")
    pongs = _pongs(b)
    data = forge.snap("data only")
    # every kind, claiming to be B: LEAVE, MESSAGE seq 2^64-2, REPLY seq 2^64-1, REGISTRY
    # version 2^64-1, GOSSIP moving B's endpoint, HELLO of a "new" B at M's address, locks
    _send_all(peer, forge.forged_frames("B", before["incarnation"], "A", data,
                                        endpoint="tcp://127.0.0.1:9"))
    # and as itself, hearsay that B restarted at M's address
    peer.send(forge.frame(forge.K["GOSSIP"], {1: "M", 2: 1, 3: [
        forge.member("B", "tcp://127.0.0.1:9", before["incarnation"] + 1, 0, 1)]}))
    time.sleep(1.5)
    now = a.members()["B"]
    check(now["state"] == "alive", "B is %s in A's view after forged frames" % now["state"])
    check(now["incarnation"] == before["incarnation"] and
          now.get("endpoint") == before.get("endpoint"),
          "B moved in A's view: %r -> %r" % (before, now))
    wait_until(lambda: _pongs(b) >= pongs + 5, 10,
               "B's messages still reach A (a forged seq 2^64-1 would drop them)")
    check("claims to come from 'B'" in a.stderr(), "A logged the refused identity: %s"
          % a.stderr()[-2000:])
    # B's own next REGISTRY still applies in A's view (the forged version 2^64-1 did not)
    with open(late, "w") as f:
        f.write("go\n")
    line = a.wait_line(r"^LATE ", 20)[0]
    check(line == "LATE late 1 from B", "A routed to B's new stage: %r" % line)
    refused = a.metric("stage_wire_refused_total", reason="identity")
    check(refused is not None and refused >= 10,
          "stage_wire_refused_total{reason=\"identity\"} counts them: %r" % refused)
    _no_code_ran(path, [a, b])
    # positive control: code from an authenticated member as itself does run (the kit's
    # payloads are real code; members are trusted: docs/security.md)
    peer.send(forge.forged_frames("M", 1, "A", forge.code_payloads(path)["function"])["MESSAGE"])
    wait_until(lambda: os.path.exists(path), 10, "a member's own function ran (control)")
    # an unlisted key is refused by ZAP: nothing it sends is read
    os.unlink(path)
    pub, sec = zmq.curve_keypair()
    stranger = RawPeer(ctx, a.endpoint, curve_server_key=pub_a, curve_keypair=(pub, sec))
    _send_refused(stranger, forge.forged_frames("B", before["incarnation"], "A",
                                                forge.code_payloads(path)["function"]).values())
    # and a peer without CURVE at all (NULL): libzmq refuses its greeting
    plain = RawPeer(ctx, a.endpoint)
    frames = list(forge.forged_frames("B", before["incarnation"], "A",
                                      forge.code_payloads(path)["function"]).values())
    frames.append(forge.frame(forge.K["GOSSIP"], {1: "M", 2: 1, 3: [
        forge.member("B", "tcp://127.0.0.1:9", before["incarnation"] + 1, 0, 1)]}))
    _send_refused(plain, frames)
    time.sleep(1.5)
    check(not os.path.exists(path), "an unlisted key's code ran")
    now = a.members()["B"]
    check(now["state"] == "alive" and now["incarnation"] == before["incarnation"] and
          now.get("endpoint") == before.get("endpoint"),
          "B moved in A's view after an unlisted key and a plain peer: %r -> %r" % (before, now))
    check_serves(ctx, a, "C", curve=True)


def _attack_from(ctx, ns, endpoint, path, *args):
    r = ctx.sh(sys.executable, os.path.join(os.path.dirname(forge.__file__), "forge.py"),
               endpoint, path, *args, ns=ns, check_rc=False)
    out = r.stdout.decode() + r.stderr.decode()
    check("sent" in out, "the attacker ran from namespace %s: %s" % (ns, out))


@timeout(120)
def test_no_code_from_another_address(ctx):
    ctx.need_netns()
    net, hub = ctx.star(["a", "x"])
    ns_a, addr_a = net["a"]
    ns_x, _ = net["x"]
    a, b = _victims(ctx, host=addr_a, netns=ns_a, insecure=True)
    path = os.path.join(ctx.tmp, "pwned")
    _attack_from(ctx, ns_x, "tcp://%s:7400" % addr_a, path)
    _no_code_ran(path, [a, b])
    pongs = _pongs(b)
    wait_until(lambda: _pongs(b) >= pongs + 3, 10, "A keeps serving B")


@timeout(120)
def test_curve_from_another_address(ctx):
    ctx.need_netns()
    net, hub = ctx.star(["a", "x"])
    ns_a, addr_a = net["a"]
    ns_x, _ = net["x"]
    ctx.curve_allow(["A", "B", "M"])
    a, b = _victims(ctx, curve=True, host=addr_a, netns=ns_a)
    before = a.members()["B"]
    path = os.path.join(ctx.tmp, "pwned")
    endpoint = "tcp://%s:7400" % addr_a
    server = _keypair(ctx, "A")[0].decode()
    # a key that is not listed: ZAP refuses it, nothing it sends is read
    _attack_from(ctx, ns_x, endpoint, path, "--server-key", server, "--inc",
                 str(before["incarnation"]))
    # listed member M, claiming to be B: every frame is refused (data payloads would be
    # taken from M as itself; code claimed as B's is refused with the frame)
    _attack_from(ctx, ns_x, endpoint, path, "--server-key", server, "--key",
                 ctx.curve_key("M"), "--inc", str(before["incarnation"]))
    _no_code_ran(path, [a, b])
    now = a.members()["B"]
    check(now["state"] == "alive" and now["incarnation"] == before["incarnation"] and
          now.get("endpoint") == before.get("endpoint"),
          "B moved in A's view: %r -> %r" % (before, now))
    check(a.metric("stage_wire_refused_total", reason="identity") >= 10,
          "A counted the frames M sent as B")
    pongs = _pongs(b)
    wait_until(lambda: _pongs(b) >= pongs + 3, 10, "A keeps serving B")


def _fds(node):
    return len(os.listdir("/proc/%d/fd" % node.pid))


def _gossip_of(n, me="M", inc=1):
    return forge.frame(forge.K["GOSSIP"], {1: me, 2: inc, 3: [
        forge.member("fake%04d" % i, "tcp://127.0.0.1:%d" % (20000 + i), 1) for i in range(n)]})


@timeout(90)
def test_gossip_of_1500_members_opens_no_sockets(ctx):
    # with CURVE: names without a key in the allow file are never members (no socket)
    ctx.curve_allow(["A", "B", "C", "M"])
    a, b = _victims(ctx, curve=True)
    pub_a = _keypair(ctx, "A")[0]
    peer = RawPeer(ctx, a.endpoint, curve_server_key=pub_a, curve_keypair=_keypair(ctx, "M"))
    peer.send(forge.frame(forge.K["HELLO"], forge.hello_fields("stage", "M", 1,
                                                               "tcp://127.0.0.1:9")))
    check(peer.recv_kind({forge.K["WELCOME"]}, 5) is not None, "A welcomes M (listed)")
    before = _fds(a)
    peer.send(_gossip_of(1500))
    time.sleep(2.0)
    after = _fds(a)
    check(after <= before + 10, "A went from %d to %d file descriptors" % (before, after))
    check(len(a.members()) <= 4, "A lists %d members" % len(a.members()))
    check(a.metric("stage_wire_refused_total", reason="members") >= 1500,
          "the refused members are counted")
    lines = [l for l in a.stderr().splitlines() if "not adding member" in l]
    check(len(lines) <= 30, "refusals are rate-limited in the log: %d lines" % len(lines))
    check_serves(ctx, a, "C", curve=True)  # a real joining node still gets in


@timeout(90)
def test_gossip_of_1500_members_is_bounded_without_curve(ctx):
    victim = ctx.script("victim.lua", VICTIM_LUA)
    pa = ctx.script("pa.lua", PA_LUA)
    a = ctx.node("A", actors=[("victim", victim, 1), ("pa", pa, 1)], sets={"members": 64})
    a.wait_stderr(r"listening", 10)
    peer = RawPeer(ctx, a.endpoint)
    before = _fds(a)
    peer.send(_gossip_of(1500))
    time.sleep(2.0)
    after = _fds(a)
    check(after <= before + 64 + 10, "A went from %d to %d file descriptors (members=64)"
          % (before, after))
    check("this node keeps at most 32 members heard of in gossip" in a.stderr(),
          "the limit is logged (half of members for hearsay)")
    check_serves(ctx, a, "C", sets={"members": 64})


@timeout(30)
def test_curve_node_whose_name_has_no_key_does_not_start(ctx):
    # every peer would refuse its frames (their claimed source has no key): say so, exit
    ctx.curve_allow(["A"])
    z = ctx.node("Z", http=False, extra=["--curve-secret", ctx.curve_key("Z"),
                                         "--curve-allow", ctx.curve_allow()])
    z.wait_stderr(r"this node's name 'Z' has no key in --curve-allow", 10, allow_exit=True)
    rc = z.proc.wait(timeout=10)
    check(rc != 0, "the node exited %d" % rc)
    # and --curve-secret without --curve-allow is a usage error
    r = ctx.run([ctx.binary, "--name", "Z", "--listen", "tcp://127.0.0.1:%d" % free_port(),
                 "--curve-secret", ctx.curve_key("Z")], timeout=10)
    check(r.returncode == 2 and b"--curve-allow" in r.stderr,
          "exit %d: %r" % (r.returncode, r.stderr[-300:]))


@timeout(90)
def test_batch_of_code_without_curve_is_data_only(ctx):
    """A BATCH (kind 18) from an unauthenticated peer: each MESSAGE, REPLY and lock frame
    inside it carries code, and each is decoded untrusted exactly as if it came alone."""
    need_zmq()
    a, b = _victims(ctx)
    path = os.path.join(ctx.tmp, "pwned")
    peer = RawPeer(ctx, a.endpoint)
    malformed = a.metric("stage_wire_refused_total", reason="malformed") or 0
    for what, payload in forge.code_payloads(path).items():
        for claim, inc in (("M", 1), ("B", a.members()["B"]["incarnation"])):
            peer.send(forge.forged_frames(claim, inc, "A", payload)["BATCH"])
    # the batch was read entry by entry (not dropped whole as malformed): its messages
    # reached the victim's handler and were refused there for carrying code
    a.wait_stderr(r"message 'call' dropped: .*untrusted", 10)
    check((a.metric("stage_wire_refused_total", reason="malformed") or 0) == malformed,
          "A refused a batch of data frames as malformed")
    _no_code_ran(path, [a, b])
    pongs = _pongs(b)
    wait_until(lambda: _pongs(b) >= pongs + 3, 10, "A keeps serving B")


@timeout(90)
def test_socket_failure_is_logged(ctx):
    """Node A runs out of file descriptors (RLIMIT_NOFILE 64) when a gossip names 200
    members: each member it cannot make a socket for is logged (before, new_dealer failed
    silently), and A keeps serving the member it already talks to."""
    need_zmq()
    # prlimit sets the limit and execs the node: a.pid is still the node's
    a, b = _victims(ctx, a_prefix=["prlimit", "--nofile=64:64", "--"])
    peer = RawPeer(ctx, a.endpoint)
    peer.send(forge.frame(forge.K["HELLO"], forge.hello_fields("stage", "M", 1,
                                                               "tcp://127.0.0.1:9")))
    peer.send(_gossip_of(200))
    a.wait_stderr(r"cannot (make a socket to|connect to) tcp://127\.0\.0\.1:2\d+: Too many "
                  r"open files", 15)
    pongs = _pongs(b)
    wait_until(lambda: _pongs(b) >= pongs + 3, 10, "A keeps serving B with no fd left")
    a.ensure_alive()


# A node listening on ipc:// is reached through gossip: --join takes HOST:PORT, so it joins
# a tcp seed, which tells the others its ipc endpoint. A closure sent to it runs only when
# the connection is authenticated by CurveZMQ; without it (--insecure) data still travels.
IPC_VICTIM_LUA = r'''
stage.waitfor("call", function (v)
  if type(v) == "function" then v() else print("DATA " .. tostring(v)) end
end)
'''
IPC_SENDER_LUA = r'''
when_ready("ipcv", {"A"}, function ()
  stage.signal("ipcv:call", function () print("RAN on " .. process.name) end)
  stage.signal("ipcv:call", "after the function")
end)
'''


class _IpcNode(Node):
    @property
    def endpoint(self):
        return "ipc://%s/%s.ipc" % (self.ctx.tmp, self.name)


def _ipc_cluster(ctx, curve):
    if curve:
        ctx.curve_allow(["A", "B", "C"])
    victim = ctx.script("ipcv.lua", IPC_VICTIM_LUA)
    b = ctx.node("B", curve=curve)
    a = _IpcNode(ctx, "A", join=[b], actors=[("ipcv", victim, 1)], curve=curve)
    ctx.nodes.append(a)
    a.start()
    c = ctx.node("C", join=[b], script=ctx.script("sender.lua", IPC_SENDER_LUA), curve=curve)
    converged([a, b, c], 20)
    check(c.members()["A"].get("endpoint", "").startswith("ipc://"),
          "C knows A by its ipc endpoint: %r" % c.members()["A"])
    return a, b, c


@timeout(90)
def test_ipc_member_runs_code_with_curve(ctx):
    a, b, c = _ipc_cluster(ctx, curve=True)
    check(a.wait_line(r"^RAN ", 20)[0] == "RAN on A", "C's closure ran on A")
    a.wait_line(r"^DATA after the function$", 10)


@timeout(90)
def test_ipc_member_takes_data_only_when_insecure(ctx):
    a, b, c = _ipc_cluster(ctx, curve=False)
    a.wait_line(r"^DATA after the function$", 20)  # the link works; the function came first
    check(not any(l.startswith("RAN ") for l in a.lines()), "C's closure ran on A over ipc "
          "without CurveZMQ: %r" % a.lines())
    a.wait_stderr(r"message 'call' dropped: .*untrusted", 10)
