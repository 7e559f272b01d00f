"""The edges of a node (issue 12): what a slow or hostile HTTP client can hold."""
import socket
import threading
import time

from harness import check, timeout, wait_until


def _slow_clients(port, n):
    """n raw connections that send a request line, then one header line every 4 s: each
    stays active, so an idle timeout never closes it."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        socks.append(s)
    stop = threading.Event()

    def trickle():
        i = 0
        while not stop.wait(4.0):
            for s in socks:
                try:
                    s.sendall(b"X-Slow-%d: 1\r\n" % i)
                except OSError:
                    pass  # closed by the node: what the bound is for
            i += 1
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    return socks, stop


def _scrape_time(node):
    t0 = time.monotonic()
    status, body = node.get("/metrics", timeout=10)
    check(status == 200 and b"stage_" in body, "a scrape answers 200: %r" % status)
    return time.monotonic() - t0


@timeout(60)
def test_slow_http_clients_do_not_block_scrapes(ctx):
    # 70 slow clients (one header line every 4 s) kept /metrics unreachable for 28 s.
    a = ctx.node("A")
    wait_until(lambda: a.get("/metrics")[0] == 200, 10, "A to serve /metrics")
    socks, stop = _slow_clients(a.http_port, 70)
    try:
        time.sleep(0.5)
        took = _scrape_time(a)
        check(took < 2.0, "a scrape with 70 slow clients connected took %.1f s" % took)
        # each slow client is closed once its request passed the deadline (5 s), however
        # actively it trickles
        t0 = time.monotonic()
        s = socks[0]
        s.settimeout(15)
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        waited = time.monotonic() - t0
        check(data in (b"",) or data.startswith(b"HTTP/1.1 "),
              "the slow client was closed (got %r)" % data[:60])
        check(waited < 8.0, "the slow client was closed within the deadline (%.1f s)" % waited)
        a.wait_stderr(r"closed \d+ connections that took longer than 5 s for a request", 10)
        took = _scrape_time(a)
        check(took < 2.0, "a scrape after the reaping took %.1f s" % took)
        check(a.alive(), "the node keeps serving")
    finally:
        stop.set()
        for s in socks:
            s.close()
