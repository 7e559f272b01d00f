"""The `make run` chat demo (scripts/run-demo.py): a bounded run prints its summary and
exits 0; Ctrl-C (SIGINT) stops the three nodes cleanly; headless Chromium loads the page
from node n1, joins a room held by an actor on n2, and a Python WebSocket client on n3
sees its message, as the page does."""
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import tempfile
import urllib.request

from harness import (ROOT, _PROCS, check, chromium_binary, fail, free_port, need_websockets,
                     timeout)

LAUNCHER = os.path.join(ROOT, "scripts", "run-demo.py")


def port_bases():
    """Three bases, each with three free consecutive ports (HTTP, WebSocket, cluster)."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        socks = []
        try:
            for i in range(30):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base, base + 10, base + 20
    fail("no 30 free consecutive ports")


class Demo:
    """The launcher as a process, its stdout collected line by line."""

    def __init__(self, ctx, seconds=0):
        self.http, self.ws, self.cluster = port_bases()
        argv = [sys.executable, LAUNCHER, "--binary", ctx.binary, "--dir",
                os.path.join(ctx.tmp, "demo"), "--http-base", str(self.http),
                "--ws-base", str(self.ws), "--cluster-base", str(self.cluster)]
        if seconds:
            argv += ["--seconds", str(seconds)]
        self.out = open(ctx.path("run-demo.out"), "w")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, cwd=ROOT)
        _PROCS.append(self.p)
        ctx.add_cleanup(self.kill)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.out.write(line + "\n")
            self.out.flush()
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_line(self, pattern, seconds):
        end = time.monotonic() + seconds
        with self.cond:
            while True:
                for l in self.lines:
                    if l is not None and re.search(pattern, l):
                        return l
                if None in self.lines:
                    fail("run-demo ended without printing /%s/: %s" %
                         (pattern, "\n".join(l for l in self.lines[-20:] if l)))
                left = end - time.monotonic()
                if left <= 0:
                    fail("run-demo printed no /%s/ within %g s" % (pattern, seconds))
                self.cond.wait(left)

    def wait_exit(self, seconds):
        try:
            return self.p.wait(seconds)
        except subprocess.TimeoutExpired:
            fail("run-demo did not exit within %g s" % seconds)

    def kill(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()


class Chromium:
    """Headless Chromium on a page, driven over its DevTools protocol (a WebSocket): the
    page's WebSockets run in real time, and the test reads the DOM when it wants to."""

    def __init__(self, ctx, url):
        self.port = free_port()
        udd = tempfile.mkdtemp(prefix="chromium-", dir=ctx.tmp)
        argv = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=%d" % self.port, "--user-data-dir=" + udd, url]
        self.err = open(ctx.path("chromium.err"), "ab")
        self.p = subprocess.Popen(argv, stdout=self.err, stderr=self.err,
                                  start_new_session=True)
        _PROCS.append(self.p)
        ctx.add_cleanup(self.kill)
        self.url = url
        self.id = 0

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except OSError:
            pass
        self.p.wait()

    async def connect(self, seconds=30):
        websockets = need_websockets()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json" % self.port,
                                            timeout=2) as r:
                    pages = [t for t in json.loads(r.read()) if t.get("type") == "page"
                             and t.get("url", "").startswith(self.url.split("?")[0])]
                if pages:
                    self.ws = await websockets.connect(pages[0]["webSocketDebuggerUrl"],
                                                       max_size=None)
                    return
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.3)
        fail("chromium's DevTools did not show the page within %g s" % seconds)

    async def evaluate(self, expr):
        self.id += 1
        await self.ws.send(json.dumps({"id": self.id, "method": "Runtime.evaluate",
                                       "params": {"expression": expr,
                                                  "returnByValue": True}}))
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if m.get("id") == self.id:
                return m.get("result", {}).get("result", {}).get("value")

    async def wait_for(self, expr, seconds, what):
        end = time.monotonic() + seconds
        v = None
        while time.monotonic() < end:
            v = await self.evaluate(expr)
            if v:
                return v
            await asyncio.sleep(0.2)
        fail("%s: not within %g s (last %r)" % (what, seconds, v))


async def client(ws_port, nick, room):
    websockets = need_websockets()
    w = await websockets.connect("ws://127.0.0.1:%d/chat" % ws_port)
    hello = json.loads(await asyncio.wait_for(w.recv(), 10))
    check(hello.get("op") == "hello" and room in hello.get("rooms", []), "hello: %r" % hello)
    await w.send(json.dumps({"op": "join", "nick": nick, "room": room}))
    return w, hello["node"]


async def wait_msg(w, pred, seconds, what):
    end = time.monotonic() + seconds
    seen = []
    while time.monotonic() < end:
        try:
            m = json.loads(await asyncio.wait_for(w.recv(), max(0.1, end - time.monotonic())))
        except asyncio.TimeoutError:
            break
        seen.append(m)
        if pred(m):
            return m
    fail("%s: not seen within %g s; got %r" % (what, seconds, seen))


@timeout(150)
def test_bounded_run_relays_and_prints_its_summary(ctx):
    d = Demo(ctx, seconds=30)
    d.wait_line(r"chat page: +http://127\.0\.0\.1:%d/app/" % d.http, 60)
    d.wait_line(r"dashboard: +http://127\.0\.0\.1:%d/" % d.http, 5)

    async def chat():
        a, na = await client(d.ws, "alice", "games")       # on n1
        c, nc = await client(d.ws + 2, "carol", "games")   # on n3
        check((na, nc) == ("n1", "n3"), "the gates are n1 and n3: %s %s" % (na, nc))
        j = await wait_msg(a, lambda m: m.get("op") == "joined", 10, "alice joined")
        check(j.get("node") == "n2", "the room games is held on n2: %r" % j)
        await wait_msg(c, lambda m: m.get("op") == "joined", 10, "carol joined")
        await a.send(json.dumps({"op": "say", "text": "hello across nodes"}))
        m = await wait_msg(c, lambda m: m.get("op") == "msg" and m.get("nick") == "alice",
                           10, "alice's message at carol")
        check(m.get("text") == "hello across nodes" and m.get("node") == "n2",
              "relayed by n2's room: %r" % m)
        await a.send(json.dumps({"op": "join", "room": "nowhere"}))
        await wait_msg(a, lambda m: m.get("op") == "error" and "no room" in m.get("text", ""),
                       10, "an unknown room is refused")
        await a.close()
        await c.close()
    asyncio.run(chat())
    rc = d.wait_exit(90)
    summary = d.wait_line(r"^run-demo: summary:", 1)
    check(rc == 0, "run-demo exits 0, not %s: %s" % (rc, summary))
    m = re.search(r"(\d+) messages relayed, (\d+) clients seen, nodes stopped cleanly", summary)
    check(m and int(m.group(1)) >= 1 and int(m.group(2)) >= 2,
          "the summary counts the relay and both clients: %s" % summary)


@timeout(120)
def test_sigint_stops_all_three_nodes_cleanly(ctx):
    d = Demo(ctx)
    d.wait_line(r"Ctrl-C stops all three nodes", 60)
    d.p.send_signal(signal.SIGINT)
    rc = d.wait_exit(60)
    summary = d.wait_line(r"^run-demo: summary:", 1)
    check(rc == 0 and "stopped cleanly" in summary,
          "SIGINT stops the demo with status 0, not %s: %s" % (rc, summary))
    for n in ("n1", "n2", "n3"):
        log = open(os.path.join(ctx.tmp, "demo", n + ".log"), errors="replace").read()
        check("ERROR" not in log and "AddressSanitizer" not in log,
              "%s stopped without errors: %s" % (n, log[-800:]))


@timeout(180)
def test_chromium_page_on_n1_chats_through_a_room_on_n2(ctx):
    d = Demo(ctx)
    d.wait_line(r"Ctrl-C stops all three nodes", 60)
    text = "hello-from-chromium-%d" % random.randrange(10 ** 6)
    url = ("http://127.0.0.1:%d/app/?ws=%d&nick=web&room=games&say=%s"
           % (d.http, d.ws, text))

    async def run():
        c, nc = await client(d.ws + 2, "carol", "games")   # a Python client on n3
        check(nc == "n3", "carol is on n3: %s" % nc)
        await wait_msg(c, lambda m: m.get("op") == "joined", 10, "carol joined")
        browser = Chromium(ctx, url)
        await browser.connect()
        m = await wait_msg(c, lambda m: m.get("op") == "msg" and m.get("nick") == "web",
                           60, "the page's message at carol on n3")
        check(m.get("text") == text and m.get("node") == "n2",
              "relayed by the room on n2: %r" % m)
        log = await browser.wait_for(
            "(t => t.includes(%s) && t)(document.getElementById('log').innerText)"
            % json.dumps("web: " + text), 20, "the page shows its message echoed by the room")
        where = await browser.evaluate("document.getElementById('where').dataset.node + ' ' + "
                                       "document.getElementById('status').textContent")
        dom = await browser.evaluate("document.documentElement.outerHTML")
        with open(ctx.path("chat-dom.html"), "w") as f:
            f.write(dom or "")
        check(where.startswith("n2 connected to node n1"),
              "the page, served by n1, is in a room on n2: %r" % where)
        check("carol joined from n3" in log or "web joined from n1" in log,
              "the page shows the room's notices: %r" % log)
        await browser.ws.close()
        browser.kill()
        await c.close()
    asyncio.run(run())
    d.p.send_signal(signal.SIGINT)
    check(d.wait_exit(60) == 0, "the demo stops cleanly")
