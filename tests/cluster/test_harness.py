"""Self-checks of the harness and of the tools the cluster tests drive (no stage-node
cluster needed): the wire encoder against the codec's seed corpus, process control and
cleanup, fd counting, Prometheus, promtool, Chromium and network namespaces."""
import http.server
import os
import subprocess
import sys
import threading
import time

from harness import (ROOT, Bin, check, chromium, dom_node_states, fail, fd_count,
                     frame, free_port, mp_pack, mp_unpack, parse_prom, prom_query,
                     prom_value, promtool_check, shape_link, start_prometheus, timeout, unframe,
                     wait_until, TestFailure, K_HELLO, K_MESSAGE)

CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus", "fuzz_wire")


def _binify(v):
    """Decoded bins come back as Bin; keep them so re-encoding is identical."""
    return v


def test_wire_codec_matches_corpus(ctx):
    """The harness' MessagePack frames are byte-identical to the codec's seed frames."""
    n = 0
    for name in sorted(os.listdir(CORPUS)):
        if not name.startswith("valid_"):
            continue
        data = open(os.path.join(CORPUS, name), "rb").read()
        version, kind, fields = unframe(data)
        check(version == 1, "%s: version %d" % (name, version))
        again = frame(kind, fields)
        check(again == data, "%s: re-encoded frame differs:\n%s\n%s" %
              (name, data.hex(), again.hex()))
        n += 1
    check(n >= 10, "only %d valid_* frames in %s" % (n, CORPUS))
    v, k, f = unframe(open(os.path.join(CORPUS, "wrong_version"), "rb").read())
    check(v == 2 and f is None, "wrong_version frame should read as version 2")
    hello = unframe(open(os.path.join(CORPUS, "valid_hello"), "rb").read())
    check(hello[1] == K_HELLO and hello[2][2] == "node-a", "valid_hello decodes: %r" % (hello,))
    check(unframe(open(os.path.join(CORPUS, "valid_message"), "rb").read())[1] == K_MESSAGE,
          "valid_message kind")
    for v in (0, 127, 128, 255, 256, 65535, 65536, 2**32, 2**64 - 1, -1, -32, -33, -129,
              -2**63, "", "x" * 31, "x" * 32, "x" * 300, "y" * 70000, Bin(b"\0" * 300),
              [1, [2, 3]], {1: "a", 2: {3: 4}}, None, True, False, 1.5):
        got, pos = mp_unpack(mp_pack(v))
        check(got == v and pos == len(mp_pack(v)), "MessagePack round trip of %r" % (v,))


def test_prometheus_text_parser(ctx):
    text = ('# HELP a_total x\n# TYPE a_total counter\n'
            'a_total{stage="s1",reason="mailbox_full"} 3\n'
            'a_total{stage="s\\"2"} 4\n'
            'b 1.5e3\nc_bucket{le="+Inf"} 7\n')
    s = parse_prom(text)
    check(prom_value(s, "a_total") == 7, "sum over series")
    check(prom_value(s, "a_total", stage='s"2') == 4, "escaped label value")
    check(prom_value(s, "b") == 1500.0, "plain sample")
    check(prom_value(s, "c_bucket", le="+Inf") == 7, "le label")
    check(prom_value(s, "missing") is None, "absent family is None")
    try:
        parse_prom("bad{ line\n")
    except TestFailure:
        pass
    else:
        fail("a bad metrics line must fail the parse")


def test_process_control_and_cleanup(ctx):
    """Helpers start, watch, count fds of, and kill processes; waits are bounded."""
    ports = {free_port() for _ in range(50)}
    check(len(ports) == 50, "free_port hands out each port once")
    code = ("import sys,time,socket\nprint('up', flush=True)\n"
            "socks=[socket.socket() for _ in range(int(sys.argv[1]))]\n"
            "print('opened', flush=True)\ntime.sleep(60)\n")
    p = ctx.spawn([sys.executable, "-c", code, "20"], "dummy")
    out = ctx.path("dummy.out")
    wait_until(lambda: "opened" in open(out).read(), 10, "the dummy to open its sockets")
    n = fd_count(p.pid)
    check(n >= 20, "fd count of the dummy (%d) includes its 20 sockets" % n)
    t0 = time.monotonic()
    try:
        wait_until(lambda: False, 0.3, "something that never happens")
    except TestFailure as e:
        check("never happens" in str(e), "the timeout message says what it waited for")
    check(time.monotonic() - t0 < 2, "wait_until respects its deadline")
    p.kill()
    p.wait(timeout=5)
    check(p.poll() is not None, "kill ends the dummy")
    # a process left running is killed by Ctx.cleanup
    q = ctx.spawn([sys.executable, "-c", "import time; time.sleep(60)"], "leftover")
    ctx.cleanup()
    check(q.poll() is not None, "cleanup killed the leftover process")


class _Metrics(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


@timeout(60)
def test_prometheus_and_promtool_plumbing(ctx):
    """Prometheus scrapes a fake /metrics and answers PromQL; promtool checks text."""
    _Metrics.body = (b'# HELP stage_messages_in_total m\n# TYPE stage_messages_in_total counter\n'
                     b'stage_messages_in_total{stage="sink"} 500\n')
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Metrics)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ctx.add_cleanup(srv.shutdown)
    rc, out = promtool_check(ctx, _Metrics.body.decode())
    check(rc == 0, "promtool accepts valid text: %s" % out)
    rc, out = promtool_check(ctx, "bad{ 1\n")
    check(rc != 0, "promtool rejects invalid text")
    port = start_prometheus(ctx, ["127.0.0.1:%d" % srv.server_address[1]])
    q = 'sum(stage_messages_in_total{stage="sink"})'
    wait_until(lambda: [v for _, v in prom_query(port, q)] == [500.0], 30,
               "prometheus to return 500 for %s" % q, interval=0.5)


@timeout(90)
def test_chromium_plumbing(ctx):
    """Headless Chromium runs the page's timers (virtual time) and dumps the DOM."""
    page = ctx.write("page.html", '<html><body><div id="n"></div><script>'
                     'setTimeout(function(){var d=document.getElementById("n");'
                     'd.setAttribute("data-node","n1");d.setAttribute("data-state","alive");'
                     '},2000)</script></body></html>')
    dom = chromium(ctx, "file://" + page, "--virtual-time-budget=5000", "--dump-dom")
    states = dom_node_states(dom)
    check(states.get("n1") == {"alive"}, "data-node n1 alive in %r" % states)
    shot = ctx.path("page.png")
    chromium(ctx, "file://" + page, "--screenshot=" + shot, "--window-size=800,600")
    check(os.path.getsize(shot) > 1000, "a screenshot was written")


@timeout(60)
def test_netns_plumbing(ctx):
    """Namespaces around a bridge reach each other; tc netem applies; all is deleted."""
    ctx.need_netns()
    net, hub = ctx.star(["a", "b"], subnet="10.77.9")
    (nsa, _), (nsb, b) = net["a"], net["b"]
    how = shape_link(ctx, nsa)
    out = ctx.sh("tc", "qdisc", "show", "dev", "eth0", ns=nsa).stdout.decode()
    check(how.split()[0] in out, "%s qdisc in place: %s" % (how, out))
    delayed = how.startswith("netem")
    # a TCP round trip across the shaped link, from inside the namespaces
    srv = subprocess.Popen(["ip", "netns", "exec", nsb, sys.executable, "-c",
                            "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
                            "socket.SO_REUSEADDR,1);s.bind(('%s',9999));s.listen();"
                            "c,_=s.accept();c.sendall(c.recv(100));c.close()" % b])
    ctx.procs.append(srv)
    srv.log_name = "echo"
    ctx.write("echo.err", "")
    code = ("import socket,time,sys\nfor i in range(50):\n try:\n"
            "  s=socket.create_connection(('%s',9999),2);break\n"
            " except OSError: time.sleep(0.1)\nt=time.time();s.sendall(b'hi');"
            "d=s.recv(100);print(d.decode(), round(time.time()-t,3))" % b)
    r = ctx.sh(sys.executable, "-c", code, ns=nsa)
    words = r.stdout.decode().split()
    check(words[0] == "hi" and (float(words[1]) >= 0.1 or not delayed),
          "echo across the shaped link (%s): %r" % (how, words))
    # 200 KB at 2 mbit/s takes about 0.8 s: the rate applies
    code2 = ("import socket,time\ns=socket.create_connection(('%s',9998),5)\n"
             "t=time.time();s.sendall(b'x'*200000);s.shutdown(1);s.recv(1);"
             "print(round(time.time()-t,2))" % b)
    sink = subprocess.Popen(["ip", "netns", "exec", nsb, sys.executable, "-c",
                             "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
                             "socket.SO_REUSEADDR,1);s.bind(('%s',9998));s.listen();"
                             "c,_=s.accept()\nwhile c.recv(65536): pass\nc.close()" % b])
    ctx.procs.append(sink)
    sink.log_name = "echo"
    time.sleep(0.3)
    secs = float(ctx.sh(sys.executable, "-c", code2, ns=nsa).stdout.decode().split()[0])
    check(secs >= 0.5, "200 KB over a 2 mbit/s link took %.2f s" % secs)
    names = list(ctx.netns)
    ctx.cleanup()
    left = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE).stdout.decode()
    for ns in names:
        check(ns not in left.split(), "namespace %s deleted by cleanup" % ns)
