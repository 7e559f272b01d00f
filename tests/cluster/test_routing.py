"""Routing across nodes: every target form, replies, no route, round-robin, broadcast."""
import collections
import time

from harness import check, start_cluster, timeout

W_LUA = r'''
stage.waitfor("who", function () return process.name end)
stage.waitfor("main:hello", function (v) return process.name .. " got " .. v end)
stage.waitfor("count", function (tag) stage.signal("main:counted", tag, process.name) end)
stage.waitfor("hit", function () stage.signal("main:tally", process.name) end)
stage.waitfor("fails", function () error("w broke on purpose") end)
'''

TARGETS_LUA = r'''
when_ready("w", {"A", "B", "C"}, function ()
  print("READY")
  local function out(tag) return function (...) print(tag .. " " .. show(...)) end end
  stage.waitfor("one", out("ONE"))
  stage.waitfor("local", out("LOCAL"))
  stage.waitfor("remote", out("REMOTE"))
  stage.waitfor("sidmsg", out("SIDMSG"))
  stage.waitfor("noroute", out("NOROUTE"))
  stage.waitfor("failed", out("FAILED"))
  stage.waitfor("counted", out("COUNTED"))
  for i = 1, 6 do stage.signal("w:who=one") end
  for i = 1, 4 do stage.signal("=w:who=local") end
  for i = 1, 4 do stage.signal("+w:who=remote") end
  for i = 1, 3 do stage.signal("w+hello=sidmsg", "hi") end
  print("NOROUTE_RET " .. show(stage.signal("nobody:x=noroute")))
  for i = 1, 3 do stage.signal("w:fails=failed") end
  print("ALL_RET " .. show(stage.signal("*w:count", "t1")))
end)
'''


def _tagged(node, tag):
    return [l[len(tag) + 1:] for l in node.lines() if l.startswith(tag + " ")]


@timeout(60)
def test_target_forms(ctx):
    """one/all/local/remote/sid+msg and replies across 3 nodes, checked through output."""
    w = ctx.script("w.lua", W_LUA)
    drv = ctx.script("driver.lua", TARGETS_LUA)
    a, b, c = start_cluster(ctx, [("A", dict(actors=[("w", w, 1)], script=drv)),
                                  ("B", dict(actors=[("w", w, 1)])),
                                  ("C", dict(actors=[("w", w, 1)]))])
    a.wait_line(r"^READY$", 20)
    a.wait_line(r"^ONE ", count=6)
    a.wait_line(r"^LOCAL ", count=4)
    a.wait_line(r"^REMOTE ", count=4)
    a.wait_line(r"^SIDMSG ", count=3)
    a.wait_line(r"^NOROUTE ", count=1)
    a.wait_line(r"^FAILED ", count=3)
    a.wait_line(r"^COUNTED ", count=3)
    time.sleep(1.0)  # anything extra (a duplicate) would show up by now

    one = collections.Counter(_tagged(a, "ONE"))
    check(one == {"A": 2, "B": 2, "C": 2},
          "sid:msg round-robins over the 3 nodes' actors (2 each): %r" % one)
    local = collections.Counter(_tagged(a, "LOCAL"))
    check(local == {"A": 4}, "=sid:msg stays on the sender's node: %r" % local)
    remote = collections.Counter(_tagged(a, "REMOTE"))
    check(remote == {"B": 2, "C": 2}, "+sid:msg goes to other nodes only, round-robin: %r"
          % remote)
    sidmsg = sorted(_tagged(a, "SIDMSG"))
    check(sidmsg == ["A got hi", "B got hi", "C got hi"],
          "sid+msg delivers main:hello, reply comes back: %r" % sidmsg)
    check(_tagged(a, "NOROUTE_RET") == ["0 no route to nobody"],
          "signal to an unknown stage returns 0, 'no route to nobody': %r"
          % _tagged(a, "NOROUTE_RET"))
    check(_tagged(a, "NOROUTE") == ["nil no route to nobody"],
          "the reply handler gets nil, 'no route to nobody': %r" % _tagged(a, "NOROUTE"))
    check(_tagged(a, "FAILED") == ["nil the handler failed"] * 3,
          "a remote handler's error answers nil, 'the handler failed': %r"
          % _tagged(a, "FAILED"))
    check(_tagged(a, "ALL_RET") == ["3"], "*sid:msg is queued for 3 instances: %r"
          % _tagged(a, "ALL_RET"))
    counted = sorted(_tagged(a, "COUNTED"))
    check(counted == ["t1 A", "t1 B", "t1 C"], "*sid:msg reaches each instance once: %r"
          % counted)
    errs = [n.name for n in (a, b, c) if "w broke on purpose" in n.stderr()]
    check(sorted(errs) == ["A", "B", "C"], "each node logged its handler's error: %r" % errs)


RR_LUA = r'''
local tally, total = {}, 0
stage.waitfor("tally", function (name)
  tally[name] = (tally[name] or 0) + 1
  total = total + 1
  if total == 900 then
    print(("SPREAD %d %d %d"):format(tally.A or 0, tally.B or 0, tally.C or 0))
  end
end)
stage.waitfor("pong", function (id) print("PONG " .. id) end)
when_ready("m", {"A", "B", "C"}, function ()
  print("READY")
  for i = 1, 900 do stage.signal("w:hit") end
  print("BCAST_RET " .. show(stage.signal("*m:ping")))
end)
'''

M_LUA = r'''
KEEP = {}
local me = process.name .. "/" .. tostring(KEEP):match("0x%x+")
stage.waitfor("ping", function () stage.signal("main:pong", me) end)
stage.waitfor("__ready", function () return process.name end)
'''


@timeout(60)
def test_round_robin_and_broadcast(ctx):
    """900 sid:msg over 3 nodes x 1 actor spread 300/300/300; a broadcast to 3 nodes x 2
    actors reaches each of the 6 instances exactly once."""
    w = ctx.script("w.lua", W_LUA)
    m = ctx.write("m.lua", M_LUA)
    drv = ctx.script("driver.lua", RR_LUA)
    acts = [("w", w, 1), ("m", m, 2)]
    a, b, c = start_cluster(ctx, [("A", dict(actors=acts, script=drv)),
                                  ("B", dict(actors=acts)), ("C", dict(actors=acts))])
    a.wait_line(r"^READY$", 20)
    spread = a.wait_line(r"^SPREAD ", 20)[0].split()[1:]
    counts = [int(x) for x in spread]
    check(all(abs(x - 300) <= 3 for x in counts),
          "round-robin over 3 nodes x 1 actor gives an even spread (A B C): %r" % counts)
    check(_tagged(a, "BCAST_RET") == ["6"], "*m:ping queued for 6 instances: %r"
          % _tagged(a, "BCAST_RET"))
    a.wait_line(r"^PONG ", count=6)
    time.sleep(1.0)
    pongs = _tagged(a, "PONG")
    check(len(pongs) == 6 and len(set(pongs)) == 6,
          "broadcast reached each instance exactly once: %r" % pongs)
    per_node = collections.Counter(p.split("/")[0] for p in pongs)
    check(per_node == {"A": 2, "B": 2, "C": 2}, "2 instances per node: %r" % per_node)
