"""Ordered locks across nodes: one home per lock name, grants in request order, expiry."""
from harness import check, start_cluster, timeout

# a locker on every node: asked to lock, it reports the grant to the driver, holds for a
# while, then releases (or never, for the one that tests the lease's expiry)
LOCKER_LUA = r'''
stage.waitfor("go", function (name, hold_ms, release)
  stage.waitfor("granted", function ()
    stage.signal("main:got", process.name, name)
    if release then
      stage.addtask(hold_ms, function () stage.signal("<" .. name .. ".*") end)
    end
  end)
  stage.signal(">" .. name .. ".granted")
end)
'''

# Three nodes ask for one lock, 50 ms apart, and hold it 300 ms each: the grants come in
# request order, whichever node is the lock's home. Then a holder that never releases:
# its 100 ms lease expires and the next requester is granted.
DRIVER_LUA = r'''
stage.waitfor("got", function (node, name) print("GOT " .. node .. " " .. name) end)
when_ready("probe", {"A", "B", "C"}, function ()
  stage.addtask(1000, function ()   -- the registry of every node has spread
    local plan = { {"lB", "shared", 300, true}, {"lC", "shared", 300, true},
                   {"lA", "shared", 300, true}, {"lC", "lease", 0, false},
                   {"lB", "lease", 50, true} }
    local at = { 0, 50, 100, 2000, 2050 }
    for i, p in ipairs(plan) do
      stage.addtask(at[i], function () stage.signal(p[1] .. ":go", p[2], p[3], p[4]) end)
    end
  end)
end)
'''


@timeout(60)
def test_cluster_wide_lock_order_and_expiry(ctx):
    locker = ctx.script("locker.lua", LOCKER_LUA)
    probe = ctx.probe()
    drv = ctx.script("driver.lua", DRIVER_LUA)
    a, b, c = start_cluster(ctx, [
        ("A", dict(script=drv, actors=[("probe", probe, 1), ("lA", locker, 1)])),
        ("B", dict(actors=[("probe", probe, 1), ("lB", locker, 1)])),
        ("C", dict(actors=[("probe", probe, 1), ("lC", locker, 1)]))])
    got = a.wait_line(r"^GOT \w+ shared$", 15, count=3)
    check([g.split()[1] for g in got] == ["B", "C", "A"],
          "grants in request order across nodes: %r" % got)
    got2 = a.wait_line(r"^GOT \w+ lease$", 15, count=2)
    check([g.split()[1] for g in got2] == ["C", "B"],
          "an unreleased grant expires and the next is granted: %r" % got2)
