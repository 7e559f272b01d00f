"""A network partition between network namespaces, and its healing (needs root)."""
import time

from harness import FAST, check, converged, timeout

OWN_LUA = r'''
stage.waitfor("ping", function () return "pong " .. process.name end)
'''

# a receiver that checks each sender's numbering: strictly increasing, no duplicate
RCV_LUA = r'''
local last, count = {}, {}
stage.waitfor("seq", function (sender, n)
  local p = last[sender]
  if p and n <= p then print("SEQERR " .. show(sender, p, n)) end
  last[sender] = n
  count[sender] = (count[sender] or 0) + 1
  if count[sender] % 25 == 0 then print("SEQ " .. show(sender, n, count[sender])) end
end)
'''

DRIVER_LUA = r'''
local me = process.name
local n = 0
local function res(tag) return function (v, err)
  print("P " .. tag .. " " .. (v and "ok" or ("err " .. tostring(err))))
end end
stage.waitfor("r_own", res("own"))
stage.waitfor("r_sb", res("sb"))
stage.waitfor("r_sc", res("sc"))
when_ready("probe", {"A", "B", "C"}, function ()
  print("READY")
  stage.addtask(25, function ()
    n = n + 1
    stage.signal("rcvB:seq", me, n)
    stage.signal("rcvC:seq", me, n)
    return 25
  end)
  stage.addtask(300, function ()
    stage.signal("=OWN:ping=r_own")
    stage.signal("sb:ping=r_sb")
    stage.signal("sc:ping=r_sc")
    return 300
  end)
end)
'''


def _after(node, idx, prefix):
    return [l for l in node.lines()[idx:] if l.startswith(prefix)]


@timeout(120)
def test_partition_and_heal(ctx):
    ctx.need_netns()
    net, hub = ctx.star(["a", "b", "c"])
    probe = ctx.probe()
    own = ctx.script("own.lua", OWN_LUA)
    rcv = ctx.script("rcv.lua", RCV_LUA)
    nodes = {}
    for role, name in (("a", "A"), ("b", "B"), ("c", "C")):
        ns, addr = net[role]
        drv = ctx.script("driver-%s.lua" % name,
                         DRIVER_LUA.replace("OWN", "s" + role))
        actors = [("s" + role, own, 1), ("probe", probe, 1)]
        if name in ("B", "C"):
            actors.insert(0, ("rcv" + name, rcv, 1))
        nodes[name] = ctx.node(name, port=7400, host=addr, netns=ns, insecure=True,
                               join=[] if name == "A" else ["%s:7400" % net["a"][1]],
                               actors=actors, script=drv)
    a, b, c = nodes["A"], nodes["B"], nodes["C"]
    converged([a, b, c], 20)
    for n in (a, b, c):
        n.wait_line(r"^READY$", 20)
    a.wait_line(r"^P sc ok$", 10)
    c.wait_line(r"^P sb ok$", 10)

    # -- partition C from A and B: C's link to the bridge goes down
    ctx.sh("ip", "link", "set", "vc", "down", ns=hub)
    bound = (FAST["suspect"] + FAST["down"] + 2 * FAST["heartbeat"]) / 1000.0 + 5
    a.wait_member_state("C", "down", bound)
    b.wait_member_state("C", "down", bound)
    c.wait_member_state("A", "down", bound)
    c.wait_member_state("B", "down", bound)
    ia, ic = len(a.lines()), len(c.lines())
    time.sleep(3.0)
    # each side keeps serving its own stages; requests across fail with an error
    pa, pc = _after(a, ia, "P "), _after(c, ic, "P ")
    check("P sb ok" in pa and "P own ok" in pa, "A's side keeps serving: %r" % pa[-8:])
    check("P own ok" in pc and "P sc ok" in pc, "C's side keeps serving: %r" % pc[-8:])
    cross_a = [l for l in pa if l.startswith("P sc ")]
    cross_c = [l for l in pc if l.startswith("P sb ")]
    ok_err = ("err node down", "err timeout", "err no route to sc", "err no route to sb")
    check(cross_a and all(l[len("P sc "):] in ok_err for l in cross_a),
          "A's requests across the partition fail with an error: %r" % cross_a[:5])
    check(cross_c and all(l[len("P sb "):] in ok_err for l in cross_c),
          "C's requests across the partition fail with an error: %r" % cross_c[:5])

    # -- heal
    ctx.sh("ip", "link", "set", "vc", "up", ns=hub)
    converged([a, b, c], 40)
    ia, ic = len(a.lines()), len(c.lines())
    a.wait_line(r"^P sc ok$", 15, after=ia)
    c.wait_line(r"^P sb ok$", 15, after=ic)
    # messages flow again across the healed link, numbered per sender
    c.wait_line(r"^SEQ A ", 15, after=len(c.lines()))
    b.wait_line(r"^SEQ C ", 15, after=len(b.lines()))
    time.sleep(1.0)
    for n in (a, b, c):
        errs = [l for l in n.lines() if l.startswith("SEQERR")]
        check(not errs, "%s saw duplicates or reordering: %r" % (n.name, errs[:5]))
        dups = n.metric("stage_wire_seq_dups_total")
        check(dups is not None, "%s exports stage_wire_seq_dups_total" % n.name)
        check(dups == 0, "%s stage_wire_seq_dups_total is %r, must be 0" % (n.name, dups))
        gaps = n.metric("stage_wire_seq_gaps_total")
        check(gaps is not None, "%s exports stage_wire_seq_gaps_total" % n.name)
