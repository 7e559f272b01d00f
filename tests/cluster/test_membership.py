"""Membership: gossip convergence, cluster names, join retries, incarnations, leaving."""
import time

from harness import (K_ERROR, K_MESSAGE, K_WELCOME, RawPeer, check, converged, fail,
                     frame, free_port, hello_fields, snapshot, start_cluster, timeout,
                     wait_until, K_HELLO)


@timeout(60)
def test_chain_join_converges(ctx):
    """5 nodes, each joining only the previous one, converge on the same 5-member view."""
    nodes = []
    for i in range(5):
        nodes.append(ctx.node("n%d" % (i + 1), join=[nodes[-1]] if nodes else []))
    incs = converged(nodes, 25)
    check(sorted(incs) == ["n1", "n2", "n3", "n4", "n5"], "the view holds the 5 nodes: %r"
          % incs)
    for n in nodes:
        st = n.status()
        check(st["node"] == n.name, "%s answers as itself" % n.name)
        check(st["members"][0]["name"] == n.name, "%s lists itself first" % n.name)
        own = st["nodes"].get(n.name, {}).get("node", {}).get("incarnation")
        check(own == incs[n.name], "%s's own incarnation %r is the one the others see %r"
              % (n.name, own, incs[n.name]))
    # every node's page shows all nodes' views, gathered over the cluster
    def all_views():
        views = nodes[0].status()["nodes"]
        return (set(views) == {n.name for n in nodes} and
                all(v.get("node", {}).get("name") == k for k, v in views.items()))
    wait_until(all_views, 15, "n1's status.json to hold the views of all 5 nodes")


@timeout(45)
def test_other_cluster_never_merges(ctx):
    x = ctx.node("X", cluster="alpha")
    y = ctx.node("Y", cluster="beta", join=[x])
    x.wait_stderr(r"cluster name mismatch", 15)
    y.wait_stderr(r"cluster name mismatch", 15)
    time.sleep(2.0)
    check(set(x.members()) == {"X"}, "X's view stays X alone: %r" % list(x.members()))
    check(set(y.members()) == {"Y"}, "Y's view stays Y alone: %r" % list(y.members()))


@timeout(60)
def test_join_retries_until_seed_comes_up(ctx):
    """A join to a port where nothing listens retries with backoff; the seed comes up
    later and the two converge."""
    seed_port = free_port()
    b = ctx.node("B", join=["127.0.0.1:%d" % seed_port], sets={"join_retry_max": 1000})
    time.sleep(3.0)
    b.ensure_alive()
    check(set(b.members()) == {"B"}, "B alone while the seed is absent: %r"
          % list(b.members()))
    a = ctx.node("A", port=seed_port)
    converged([a, b], 15)


@timeout(60)
def test_restart_is_new_incarnation(ctx):
    """A node restarted on the same port is a new incarnation: the others see it, and a
    message addressed to the old incarnation is refused while one to the new runs."""
    sink = ctx.script("sink.lua",
                      'stage.waitfor("hit", function (tag) print("HIT " .. tostring(tag)) end)\n')
    a, b, c = start_cluster(ctx, [("A", {}), ("B", dict(actors=[("sink", sink, 1)])),
                                  ("C", {})])
    old = converged([a, b, c])["B"]
    b.kill9()
    b.start()
    new = wait_until(lambda: (lambda m: m and m["state"] == "alive" and
                              m["incarnation"] != old and m["incarnation"])(
                                  a.members().get("B")), 20,
                     "A to see B alive with a new incarnation")
    check(new > old, "the new incarnation %r is above the old %r" % (new, old))
    incs = converged([a, b, c], 20)
    check(incs["B"] == new, "every node sees B's new incarnation: %r" % incs)

    # a raw peer joins and addresses B's old, then new incarnation
    peer = RawPeer(ctx, b.endpoint)
    me = "raw-%d" % free_port()
    peer.send(frame(K_HELLO, hello_fields("stage", me, 1, "tcp://127.0.0.1:%d" % free_port())))
    got = peer.recv_kind({K_WELCOME, K_ERROR}, 10)
    check(got is not None and got[1] == K_WELCOME, "B welcomes a raw peer: %r" % (got,))

    def message(inc, tag, seq):
        return frame(K_MESSAGE, {1: {1: me, 2: 1, 3: 1, 4: "raw"},
                                 2: {1: "B", 2: inc, 4: "sink"},
                                 3: 0, 4: "hit", 7: seq, 9: snapshot(tag)})
    peer.send(message(old, "stale", 1))
    time.sleep(1.5)
    check(not any("stale" in l for l in b.lines()),
          "a message to B's old incarnation must not run: %r" % b.lines())
    peer.send(message(new, "fresh", 2))
    b.wait_line(r"^HIT fresh$", 10)
    check(not any("stale" in l for l in b.lines()),
          "the stale message never ran: %r" % b.lines())


@timeout(45)
def test_sigterm_leaves_cleanly(ctx):
    a, b, c = start_cluster(ctx, [("A", {}), ("B", {}), ("C", {})])
    rc = c.term(10)
    check(rc == 0, "C exits 0 after SIGTERM (got %r)" % rc)
    seen = []

    def look():
        sa, sb = a.members().get("C", {}).get("state"), b.members().get("C", {}).get("state")
        seen.extend([sa, sb])
        if "down" in seen or "suspect" in seen:
            fail("a node that left cleanly was marked %s: %r" %
                 ("down" if "down" in seen else "suspect", seen))
        return sa == "left" and sb == "left"
    wait_until(look, 10, "A and B to see C as left")
    time.sleep(3.0)  # past suspect+down: still left, never down
    look()
    check(a.members()["C"]["state"] == "left" and b.members()["C"]["state"] == "left",
          "C stays left")
    check(a.members()["B"]["state"] == "alive", "B still alive in A's view")
