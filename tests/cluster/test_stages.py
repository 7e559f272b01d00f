"""The built-in stages (index, route, ticket) across nodes: one home per stage in the
cluster, the same whichever node uses it first; a home that dies answers nil, "node down"
and a new, empty home takes over; malformed requests and limits answered from the home."""
import os
import random
import re
import shutil
import string

from harness import check, converged, free_port, start_cluster, timeout

MASK = (1 << 64) - 1
STAGES = ("index", "route", "ticket")


def rendezvous(key, node):
    """node/cluster/sn_dlock.c's hash: the home of a built-in stage that no node runs yet is
    the alive member ranked first for key "builtin:STAGE"."""
    h = 1469598103934665603
    for b in key.encode():
        h = ((h ^ b) * 1099511628211) & MASK
    h = ((h ^ 0xff) * 1099511628211) & MASK
    for b in node.encode():
        h = ((h ^ b) * 1099511628211) & MASK
    return h ^ (h >> 29)


def home_of(stage, names):
    return sorted(names, key=lambda n: (-rendezvous("builtin:" + stage, n), n))[0]


def names_with_home(count):
    """count node names where every built-in stage's home is the second one."""
    rnd = random.Random(15)
    for _ in range(100000):
        names = ["".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(2, 6)))
                 for _ in range(count)]
        if len(set(names)) == count and all(home_of(s, names) == names[1] for s in STAGES):
            return names
    raise AssertionError("no names found")


def homes_started(nodes, stage):
    rx = re.compile(r"built-in stage '%s' started: this node is its home" % stage)
    return [n.name for n in nodes for line in n.stderr().splitlines() if rx.search(line)]


# A user of the three stages on each node, as stage "u<NODE>"; starts when file "go" exists.
USER_LUA = r'''
local me = process.name
local function p(...) print(me .. " " .. show(...)) end
stage.waitfor("set", function (r, e) p("SET", r and r[me], e) end)
stage.waitfor("sub", function (r, e) p("SUB", r, e) end)
stage.waitfor("hit", function (topic, v) p("HIT", topic, v) end)
stage.waitfor("pub", function (n, e) p("PUB", n, e) end)
stage.waitfor("total", function (n, e) p("TOTAL", n, e) end)
stage.waitfor("top", function (t, e)
  local s = {}
  for d, x in pairs(t or {}) do s[d] = x.k .. "=" .. x.i end
  p("TOP", table.concat(s, ","), e)
end)
stage.waitfor("granted", function (v) p("GRANT", v); return 0 end)
stage.waitfor("fb", function (id, r) p("FB", type(r)) end)
stage.waitfor("bad", function (r, e) p("BAD", r, e) end)
when_file(GO, function ()
  stage.signal("index:s?board=set", {[me] = {i = SCORE}})
  stage.signal("route:@=sub", {["news."] = "hit"})
  stage.signal("ticket:@gate", {1})
  stage.addtask(1500, function ()
    stage.signal("index:t?board=total", 0)
    stage.signal("index:f?board=top", {1, 10})
    if me == "A" then stage.signal("route:*news.today=pub", 7) end
    stage.signal("ticket:gate=granted?fb", me)
    -- malformed: each answered with what is wrong, and the stage goes on serving
    stage.signal("index:s?board=bad", {[me] = {i = "high"}})
    stage.signal("route:@=bad", {["news."] = 5})
    stage.signal("ticket:@gate=bad", {"many"})
    stage.addtask(500, function () stage.signal("index:t?board=total", 0) end)
  end)
end)
'''


def user(ctx, name, score, go):
    return ctx.script("u%s.lua" % name, ("GO, SCORE = %r, %d\n" % (go, score)) + USER_LUA)


@timeout(90)
def test_one_home_used_across_two_nodes(ctx):
    """Both nodes use the three stages at once, before any registry knows a home: one home
    each, on the node rendezvous hashing names; each sees the other's data."""
    go = ctx.path("go")
    probe = ctx.probe()
    a, b = start_cluster(ctx, [
        ("A", dict(actors=[("probe", probe, 1), ("uA", user(ctx, "A", 10, go), 1)])),
        ("B", dict(actors=[("probe", probe, 1), ("uB", user(ctx, "B", 20, go), 1)]))])
    ctx.touch("go")
    for n in (a, b):
        n.wait_line(r"^%s SET 1 nil$|^%s SET 2 nil$" % (n.name, n.name), 15)
        n.wait_line(r"^%s SUB true nil$" % n.name, 15)
        n.wait_line(r"^%s TOTAL 2 nil$" % n.name, 15, count=2)
        n.wait_line(r"^%s TOP B=20,A=10 nil$" % n.name, 15)
        n.wait_line(r"^%s HIT news.today 7$" % n.name, 15)
        n.wait_line(r"^%s GRANT %s$" % (n.name, n.name), 15)
        n.wait_line(r"^%s BAD nil index: s\?board '%s'\.i: a score must be an integer, "
                    r"got string$" % (n.name, n.name), 15)
        n.wait_line(r"^%s BAD nil route: subscribe 'news\.': the callback must be a handler "
                    r"id \(string\), got number$" % n.name, 15)
        n.wait_line(r"^%s BAD nil ticket: '@gate': \[1\] must be the number of tickets "
                    r"\(integer\)$" % n.name, 15)
    a.wait_line(r"^A PUB 2 nil$", 15)
    for s in STAGES:
        started = homes_started([a, b], s)
        check(started == [home_of(s, ["A", "B"])],
              "%s: one home, on the rendezvous node %s: %r" % (s, home_of(s, ["A", "B"]),
                                                              started))


DRIVER_LUA = r'''
local function p(...) print("A " .. show(...)) end
stage.waitfor("set", function (r, e) p("SET", r and r.K, e) end)
stage.waitfor("sub", function (r, e) p("SUB", r, e) end)
stage.waitfor("hit", function (topic, v) p("HIT", topic, v) end)
stage.waitfor("cat", function (r, e) p("CAT", r, e) end)
stage.waitfor("total", function (n, e) p("TOTAL", n, e) end)
stage.waitfor("pub", function (n, e) p("PUB", n, e) end)
stage.waitfor("ask", function (r, e) p("ASK", r, e) end)
when_file(GO1, function ()
  stage.signal("index:s?board=set", {K = {i = 5}})
  stage.signal("route:@=sub", {["news."] = "hit"})
  stage.signal("ticket:@gate=cat", {2})
end)
when_file(GO2, function ()   -- the home is frozen: these wait for it
  stage.signal("index:t?board=total", 0)
  stage.signal("route:*news.x=pub", 1)
  stage.signal("ticket:@gate=ask", {3})
  p("SENT")
end)
when_file(GO3, function ()   -- the home is down: a new, empty home
  stage.signal("index:t?board=total", 0)
  stage.signal("route:*news.x=pub", 1)
end)
'''


@timeout(120)
def test_home_killed(ctx):
    """The home of the three stages is frozen, then killed: requests pending at it get
    nil, "node down"; later requests go to a new home, which starts empty."""
    names = names_with_home(3)
    probe = ctx.probe()
    drv = ctx.script("driver.lua", "GO1, GO2, GO3 = %r, %r, %r\n" % (
        ctx.path("go1"), ctx.path("go2"), ctx.path("go3")) + DRIVER_LUA)
    a, h, c = start_cluster(ctx, [
        (names[0], dict(actors=[("probe", probe, 1), ("drv", drv, 1)])),
        (names[1], dict(actors=[("probe", probe, 1)])),
        (names[2], dict(actors=[("probe", probe, 1)]))])
    ctx.touch("go1")
    a.wait_line(r"^A SET 1 nil$", 15)
    a.wait_line(r"^A SUB true nil$", 15)
    a.wait_line(r"^A CAT true nil$", 15)
    for s in STAGES:
        check(homes_started([a, h, c], s) == [h.name], "%s: its home is %s: %r" %
              (s, h.name, homes_started([a, h, c], s)))
    h.stop()
    ctx.touch("go2")
    a.wait_line(r"^A SENT$", 15)
    h.kill9()
    a.wait_line(r"^A TOTAL nil node down$", 30)
    a.wait_line(r"^A PUB nil node down$", 30)
    a.wait_line(r"^A ASK nil node down$", 30)
    a.wait_member_state(h.name, "down", 30)
    ctx.touch("go3")
    a.wait_line(r"^A TOTAL 0 nil$", 15)   # a new home, empty: the data died with the old one
    a.wait_line(r"^A PUB 0 nil$", 15)     # and its subscriptions too
    new = homes_started([a, c], "index")
    check(new == [home_of("index", [a.name, c.name])],
          "the new home is the rendezvous node of the survivors: %r" % new)


SLOW_START_LUA = r'''
local function p(...) print("A " .. show(...)) end
stage.waitfor("set", function (r, e) p("SET", r and r.K, e) end)
stage.waitfor("total", function (n, e) p("TOTAL", n, e) end)
when_file(GO, function ()
  stage.signal("index:s?board=set", {K = {i = 5}})
  stage.signal("index:t?board=total", 0)
end)
'''


@timeout(90)
def test_home_keeps_serving_while_its_stage_starts(ctx):
    """A built-in stage's home starts it at the first message from another node. Making its
    state (here a preload file spinning 4 s, as a large preload folder on a loaded machine)
    must not hold the home's loop thread: it keeps heartbeating, so the requester does not
    declare it down, and the requests held meanwhile are answered in order once the stage
    runs. (The home once made the state inside the loop's delivery and waited there, so its
    peers found it silent and answered "node down".)"""
    a_name, h_name = names_with_home(2)
    pre = ctx.path("preload")
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "..", "preload"), pre)
    flag = ctx.path("slow")
    with open(os.path.join(pre, "zz_slow.lua"), "w") as f:
        f.write("local f = io.open(%r)\nif f then\n  f:close()\n"
                "  local t = os.time() + 4\n  while os.time() < t do end\nend\n" % flag)
    fast = ["--set", "suspect=1000", "--set", "down=1000"]
    drv = ctx.script("driver.lua", "GO = %r\n" % ctx.path("go") + SLOW_START_LUA)
    a, h = start_cluster(ctx, [
        (a_name, dict(actors=[("drv", drv, 1)], extra=fast)),
        (h_name, dict(actors=[], extra=fast + ["--preload", pre]))])
    ctx.touch("slow")
    ctx.touch("go")
    a.wait_line(r"^A SET 1 nil$", 30)
    a.wait_line(r"^A TOTAL 1 nil$", 30)
    check(homes_started([a, h], "index") == [h.name],
          "index: its home is %s: %r" % (h.name, homes_started([a, h], "index")))
    check("suspect" not in a.stderr(), "the home was never suspected:\n%s" % a.stderr())


RESTART_LUA = r'''
local function p(...) print("A " .. show(...)) end
stage.waitfor("second", function (n, e) p("SECOND", n, e) end)
stage.waitfor("first", function (n, e)
  p("FIRST", n, e)
  stage.signal("index:t?board=second", 0)
end)
when_file(GO, function () stage.signal("index:t?board=first", 0) end)
'''


@timeout(90)
def test_home_actor_dies_next_request_starts_it_again(ctx):
    """The home's index actor dies at its first start (its preload's builtin/index.stage
    fails once, as a stage the governor stops): the request held for it is answered as no
    route, and the next request from the other node starts a fresh home there, which
    answers. (The home's start marker once stayed set: the next request's start waited
    30 s for a start that never came and the request was dropped.)"""
    a_name, h_name = names_with_home(2)
    pre = ctx.path("preload")
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "..", "preload"), pre)
    with open(os.path.join(pre, "builtin", "index.stage"), "w") as f:
        f.write('if stage.once("dies-once", function () end) then\n'
                # after the frame held for it is delivered (its queue is answered as no
                # route; held frames for a home already gone are dropped, logged)
                "  local t = os.time() + 2\n  while os.time() < t do end\n"
                '  error("dies once", 0)\nend\nstage.builtin.index()\n')
    drv = ctx.script("driver.lua", "GO = %r\n" % ctx.path("go") + RESTART_LUA)
    a, h = start_cluster(ctx, [
        (a_name, dict(actors=[("drv", drv, 1)])),
        (h_name, dict(actors=[], extra=["--preload", pre]))])
    ctx.touch("go")
    a.wait_line(r"^A FIRST nil no route", 30)
    a.wait_line(r"^A SECOND 0 nil$", 15)
    check("started again, its previous home here is gone" in h.stderr(),
          "the home's restart is logged:\n%s" % h.stderr())


def runner_rank(stage, node):
    """node/runtime/sn_builtin.c's order among nodes already running stage (key: the name)."""
    return rendezvous(stage, node)


JOINER_LUA = r'''
local function p(...) print(process.name .. " " .. show(...)) end
stage.waitfor("total", function (n, e) p("TOTAL", n, e) end)
stage.waitfor("set", function (r, e) p("SET", r and r.K, e) end)
if SET then
  when_file(GO, function () stage.signal("index:s?board=set", {K = {i = 5}}) end)
else -- at once, while this node joins: before it knows any member or the running home
  stage.signal("index:t?board=total", 0)
  stage.addtask(100, function () stage.signal("index:t?board=total", 0) end)
end
when_file(GO2, function () stage.signal("index:t?board=total", 0) end)
'''


@timeout(90)
def test_node_joining_uses_the_running_home(ctx):
    """A node that uses index while it joins, before it knows the members or that another
    node runs index already, must not start a second, empty home (which, ranked first once
    the registries meet, would hide the running home's data from every node): its requests
    reach the running home, or fail with "node down", never answer from an empty board."""
    rnd = random.Random(7)
    for _ in range(100000):
        names = ["".join(rnd.choice(string.ascii_lowercase) for _ in range(4)) for _ in range(3)]
        x, y, z = names
        if (len(set(names)) == 3 and home_of("index", [x, y]) == x and
                home_of("index", names) == z and runner_rank("index", z) > runner_rank("index", x)):
            break
    go, go2 = ctx.path("go"), ctx.path("go2")
    def drv(name, set_):
        return ctx.script("d%s.lua" % name, "GO, GO2, SET = %r, %r, %s\n" % (
            go, go2, "true" if set_ else "false") + JOINER_LUA)
    a, b = start_cluster(ctx, [(x, dict(actors=[("probe", ctx.probe(), 1), ("d", drv(x, True), 1)])),
                               (y, dict(actors=[("probe", ctx.probe(), 1)]))])
    ctx.touch("go")
    a.wait_line(r"^%s SET 1 nil$" % x, 15)
    c = ctx.node(z, join=[a], actors=[("probe", ctx.probe(), 1), ("d", drv(z, False), 1)])
    converged([a, b, c], 20)
    c.wait_line(r"^%s TOTAL " % z, 15, count=2)
    early = [l for l in c.lines() if l.startswith(z + " TOTAL ")]
    for l in early:
        check(l in (z + " TOTAL 1 nil", z + " TOTAL nil node down"),
              "a request from the joining node answered from the running home or 'node down': %r" % early)
    ctx.touch("go2")
    for n in (a, c):
        n.wait_line(r"^%s TOTAL 1 nil$" % n.name, 15)
    check(homes_started([a, b, c], "index") == [x],
          "one home, the running one (%s): %r" % (x, homes_started([a, b, c], "index")))


@timeout(60)
def test_node_that_never_joins_fails_node_down(ctx):
    """A node given --join whose seed never answers does not know whether another node runs
    index: it is not its own home; a request waits builtin.settle_ms, then fails with
    "node down", logged with the setting's name, and no home starts there."""
    drv = ctx.script("lone.lua", r'''
stage.waitfor("total", function (n, e) print("TOTAL " .. show(n, e)) end)
local ok, e = stage.signal("index:t?board=total", 0)
print("SENT " .. show(ok, e))
''')
    n = ctx.node("lone", join=["127.0.0.1:%d" % free_port()], actors=[("d", drv, 1)],
                 extra=["--set", "builtin.settle_ms=300"])
    n.wait_line(r"^SENT 0 node down$", 15)
    n.wait_line(r"^TOTAL nil node down$", 15)
    check("builtin.settle_ms" in n.stderr(), "the wait's limit is logged:\n%s" % n.stderr())
    check(homes_started([n], "index") == [], "no home started: %r" % homes_started([n], "index"))


LIMITS_LUA = r'''
local function p(...) print("A " .. show(...)) end
stage.waitfor("r", function (r, e)
  if type(r) == "table" then
    local ks = {}
    for k, v in pairs(r) do ks[#ks + 1] = k .. "=" .. tostring(v) end
    table.sort(ks)
    r = table.concat(ks, ",")
  end
  p("R", r, e)
end)
when_file(GO, function ()
  local steps = {
    {"index:s?b1=r", {K = {i = 1}}}, {"index:s?b2=r", {K = {i = 1}}},
    {"index:s?b3=r", {K = {i = 1}}},                 -- over index.boards=2
    {"route:@=r", {["t.a"] = "cb", ["t.b"] = "cb"}}, -- over route.topics=1
    {"ticket:@c1=r", {1}}, {"ticket:@c2=r", {1}},    -- over ticket.categories=1
    {"index:s?b1=r", {L = {i = 2}}},                 -- still serving
  }
  local i = 0
  stage.addtask(10, function ()
    i = i + 1
    if not steps[i] then return nil end
    stage.signal(steps[i][1], steps[i][2])
    return 100
  end)
end)
'''


@timeout(90)
def test_limits_at_the_home(ctx):
    """The limits are the home's (--set STAGE.LIMIT=N on the home node): a request past one
    is answered nil with the limit named, logged at the home, and the stage goes on."""
    names = names_with_home(2)
    probe = ctx.probe()
    drv = ctx.script("driver.lua", "GO = %r\n" % ctx.path("go") + LIMITS_LUA)
    limits = {"index.boards": 2, "route.topics": 1, "ticket.categories": 1}
    a, h = start_cluster(ctx, [
        (names[0], dict(actors=[("probe", probe, 1), ("drv", drv, 1)])),
        (names[1], dict(actors=[("probe", probe, 1)], sets=limits))])
    ctx.touch("go")
    want = ["A R K=1 nil", "A R K=1 nil", "A R nil index: too many boards (limit 2)",
            "A R nil route: too many topics (limit 1)", "A R true nil",
            "A R nil ticket: too many categories (limit 1)", "A R L=1 nil"]
    got = a.wait_line(r"^A R ", 20, count=len(want))
    check(got == want, "answers from the home: %r" % got)
    h.wait_stderr(r"^index: limit reached: index: too many boards \(limit 2\)$", 5,
                  flags=re.M)
    h.wait_stderr(r"^route: too many topics \(limit 1\)$", 5, flags=re.M)
    h.wait_stderr(r"^ticket: too many categories \(limit 1\)$", 5, flags=re.M)
    converged([a, h])
