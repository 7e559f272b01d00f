"""A large message over a slow link while heartbeats run: no false failure (needs root)."""
import time

from harness import check, converged, shape_link, timeout

BIG_LUA = r'''
local function expected()
  local parts = {}
  for i = 1, 187500 do parts[i] = string.format("%08d", i) end
  return table.concat(parts)
end
stage.waitfor("take", function (s)
  local ok = (s == expected())
  print("GOT " .. #s .. " " .. (ok and "intact" or "corrupt"))
  return ok and "intact" or "corrupt", #s
end)
'''

SENDER_LUA = r'''
stage.waitfor("got", function (...) print("REPLY " .. show(...)) end)
when_ready("probe", {"A", "B"}, function ()
  local parts = {}
  for i = 1, 187500 do parts[i] = string.format("%08d", i) end
  local s = table.concat(parts)        -- 1,500,000 bytes
  print("SENDING " .. #s)
  stage.signal("big:take=got", s)
end)
'''


@timeout(120)
def test_large_message_on_slow_link(ctx):
    ctx.need_netns()
    net, hub = ctx.star(["a", "b"], subnet="10.77.1")
    how = shape_link(ctx, net["a"][0])           # A's egress: 100 ms, 2 mbit/s
    print("link shaping: %s" % how)
    sets = {"heartbeat": 200, "suspect": 2000, "down": 2000}
    probe = ctx.probe()
    big = ctx.script("big.lua", BIG_LUA)
    drv = ctx.script("sender.lua", SENDER_LUA)
    (nsa, adda), (nsb, addb) = net["a"], net["b"]
    b = ctx.node("B", port=7400, host=addb, netns=nsb, insecure=True, sets=sets,
                 actors=[("big", big, 1), ("probe", probe, 1)])
    a = ctx.node("A", port=7400, host=adda, netns=nsa, insecure=True, sets=sets,
                 join=["%s:7400" % addb], actors=[("probe", probe, 1)], script=drv)
    converged([a, b], 30)
    a.wait_line(r"^SENDING 1500000$", 30)
    t0 = time.monotonic()
    polls, bad = 0, []
    while time.monotonic() - t0 < 60:
        for n in (a, b):
            for name, m in n.members().items():
                if m["state"] != "alive":
                    bad.append("%.1f s: %s sees %s %s" % (time.monotonic() - t0, n.name,
                                                           name, m["state"]))
        polls += 1
        if any(l.startswith("REPLY ") for l in a.lines()):
            break
        time.sleep(0.2)
    took = time.monotonic() - t0
    check(not bad, "a node was marked suspect/down during the transfer: %r" % bad[:5])
    got = [l for l in b.lines() if l.startswith("GOT ")]
    check(got == ["GOT 1500000 intact"], "B received the 1.5 MB payload intact: %r" % got)
    reply = [l for l in a.lines() if l.startswith("REPLY ")]
    check(reply == ["REPLY intact 1500000"], "A got B's answer: %r (after %.1f s)"
          % (reply, took))
    check(polls >= 5, "status was polled during the transfer (%d polls, %.1f s)"
          % (polls, took))
    # and for a few more heartbeats after it
    time.sleep(2.0)
    for n in (a, b):
        states = {k: v["state"] for k, v in n.members().items()}
        check(all(s == "alive" for s in states.values()), "%s's view after: %r"
              % (n.name, states))
