"""Operating a cluster (issue 8): a real Prometheus, promtool under load, the dashboard in
headless Chromium, and `stage-node status`."""
import os
import time

from harness import (FAST, ROOT, check, chromium, dom_node_states, prom_query,
                     promtool_check, start_cluster, start_prometheus, timeout, wait_until)

SINK_LUA = r'''
stage.waitfor("m", function () end)
'''

WORKLOAD_LUA = r'''
when_ready("probe", {"A", "B", "C"}, function ()
  print("READY")
  for i = 1, 500 do stage.signal("sink:m", i) end
  print("SENT 500")
end)
'''

FLOOD_LUA = r'''
when_ready("probe", {"A", "B", "C"}, function ()
  print("READY")
  stage.addtask(5, function ()
    for i = 1, 200 do stage.signal("sink:m", i); stage.signal("*probe:__ready") end
    return 5
  end)
end)
'''


def _trio(ctx, driver_body):
    probe = ctx.probe()
    sink = ctx.script("sink.lua", SINK_LUA)
    drv = ctx.script("driver.lua", driver_body)
    return start_cluster(ctx, [
        ("A", dict(script=drv, actors=[("probe", probe, 1)])),
        ("B", dict(actors=[("sink", sink, 1), ("probe", probe, 1)])),
        ("C", dict(actors=[("probe", probe, 1)]))])


@timeout(90)
def test_prometheus_counts_a_known_workload(ctx):
    a, b, c = _trio(ctx, WORKLOAD_LUA)
    port = start_prometheus(ctx, ["127.0.0.1:%d" % n.http_port for n in (a, b, c)])
    a.wait_line(r"^SENT 500$", 20)
    wait_until(lambda: b.metric("stage_messages_in_total", stage="sink") == 500, 15,
               "B's /metrics to count 500 messages into sink")
    q = 'sum(stage_messages_in_total{stage="sink"})'
    wait_until(lambda: [v for _, v in prom_query(port, q)] == [500.0], 30,
               "Prometheus to answer 500 for %s" % q, interval=0.5)
    wait_until(lambda: (lambda up: len(up) == 3 and all(v == 1.0 for _, v in up))(
        prom_query(port, "up")), 15, "Prometheus to see the 3 targets up", interval=0.5)
    out = prom_query(port, 'sum(stage_messages_out_total{stage="main"})')
    check(out and out[0][1] >= 500, "A's main sent at least 500 messages: %r" % out)
    peers = prom_query(port, 'stage_peers{state="alive"}')
    # whether a node counts itself among its peers is not fixed; all three agree
    vals = sorted(v for _, v in peers)
    check(len(vals) == 3 and vals[0] == vals[2] and vals[0] in (2.0, 3.0),
          "each node counts the same 2 (or 3, itself included) alive peers: %r" % peers)


@timeout(60)
def test_metrics_valid_under_load(ctx):
    a, b, c = _trio(ctx, FLOOD_LUA)
    a.wait_line(r"^READY$", 20)
    time.sleep(0.5)
    for i in range(5):
        for n in (a, b):
            text = n.metrics_text()
            rc, out = promtool_check(ctx, text)
            if rc != 0:
                ctx.write("metrics-%s-%d.txt" % (n.name, i), text)
            check(rc == 0, "promtool check metrics on %s's /metrics (round %d): exit %d\n%s"
                  % (n.name, i, rc, out[-2000:]))
        time.sleep(0.2)
    check(b.metric("stage_messages_in_total", stage="sink") > 0, "the flood reached B")
    for name in ("stage_messages_in_total", "stage_messages_out_total",
                 "stage_messages_dropped_total", "stage_peers", "stage_wire_bytes_total",
                 "stage_function_cache_total", "stage_wire_seq_gaps_total",
                 "stage_wire_seq_dups_total"):
        text = b.metrics_text()
        check("# TYPE %s " % name in text, "B's /metrics has the family %s" % name)
    check(a.metric("stage_messages_out_total", stage="main") > 0,
          "A counts the messages its main stage sends")


@timeout(120)
def test_dashboard_in_chromium(ctx):
    a, b, c = _trio(ctx, WORKLOAD_LUA)
    url = "http://127.0.0.1:%d/" % a.http_port

    def states():
        return dom_node_states(chromium(ctx, url, "--virtual-time-budget=5000", "--dump-dom"))
    st = wait_until(lambda: (lambda s: s if all(s.get(n) == {"alive"} for n in "ABC")
                             else None)(states()), 30,
                    "the dashboard to show A, B, C alive")
    check(set(st) >= {"A", "B", "C"}, "the dashboard shows the three nodes: %r" % st)
    c.kill9()
    bound = (FAST["suspect"] + FAST["down"] + 2 * FAST["heartbeat"]) / 1000.0 + 2
    a.wait_member_state("C", "down", bound + 5)
    st = wait_until(lambda: (lambda s: s if s.get("C") == {"down"} else None)(states()), 30,
                    "the dashboard to show C down")
    check(st.get("A") == {"alive"} and st.get("B") == {"alive"},
          "A and B still alive on the dashboard: %r" % st)
    shot = os.path.join(ROOT, "build", "dashboard.png")
    if os.path.exists(shot):
        os.unlink(shot)
    chromium(ctx, url, "--virtual-time-budget=5000", "--screenshot=" + shot,
             "--window-size=1400,900")
    check(os.path.exists(shot) and os.path.getsize(shot) > 10000,
          "the screenshot %s was written" % shot)


@timeout(60)
def test_status_command(ctx):
    a, b, c = _trio(ctx, WORKLOAD_LUA)
    r = ctx.run([ctx.binary, "status", "--http", "127.0.0.1:%d" % b.http_port], timeout=15)
    out = r.stdout.decode(errors="replace")
    check(r.returncode == 0, "stage-node status exits 0: %d %s" % (r.returncode,
                                                                  r.stderr.decode()))
    for name in ("A", "B", "C"):
        check(any(line.split() and line.split()[0] == name for line in out.splitlines())
              or any((" %s " % name) in (" " + line + " ") for line in out.splitlines()),
              "the status table names node %s:\n%s" % (name, out))
    check(out.count("alive") >= 3, "the table shows the three nodes alive:\n%s" % out)
