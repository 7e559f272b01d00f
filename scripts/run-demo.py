#!/usr/bin/env python3
"""run-demo.py: the `make run` demo: a local 3-node cluster (CurveZMQ, keys made with
scripts/cluster-keys.sh under build/demo/keys) running a chat. Each node serves the page
(scripts/chat/www, at /app/ of its --http) and a WebSocket gate (scripts/chat/gate.lua);
the rooms are actors spread over the nodes (lobby on n1, games on n2, music on n3), so a
client of one node talks through a room on another. Runs until Ctrl-C (or SIGTERM), or
for --seconds; then stops the nodes with SIGINT, prints a summary and exits 0 when every
node stopped cleanly (1 otherwise, 2 for bad usage).

  scripts/run-demo.py [--binary build/stage-node] [--seconds N] [--http-base 8080]
                      [--ws-base 8090] [--cluster-base 7401] [--dir build/demo]

Node i (0, 1, 2) serves HTTP on http-base+i, WebSocket on ws-base+i and the cluster on
cluster-base+i. Node logs go to DIR/NAME.log; chat lines are echoed here."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("n1", "n2", "n3")
ROOMS = ("lobby", "games", "music")  # room i is an actor on node i
START_S = 30  # the cluster must be up and every room routable within this
STOP_S = 15  # a node must exit within this after SIGINT


class Node:
    def __init__(self, name, argv, log_path):
        self.name = name
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True, cwd=ROOT)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.log.write(raw)
            self.log.flush()
            line = raw.decode(errors="replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)
            if line.startswith("chat: "):
                print("[%s] %s" % (self.name, line), flush=True)

    def count(self, pattern):
        with self.lock:
            return sum(1 for l in self.lines if re.search(pattern, l))


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def make_keys(binary, keydir):
    env = dict(os.environ, STAGE_NODE=binary)
    subprocess.run([os.path.join(ROOT, "scripts", "cluster-keys.sh"), "dir", keydir] +
                   list(NAMES), check=True, env=env, cwd=ROOT)


def start(args, keydir):
    nodes = []
    chat = os.path.join(ROOT, "scripts", "chat")
    allow = os.path.join(keydir, "allow", "allow.list")
    for i, name in enumerate(NAMES):
        argv = [args.binary, "--name", name,
                "--listen", "tcp://127.0.0.1:%d" % (args.cluster_base + i),
                "--curve-allow", allow,
                "--curve-secret", os.path.join(keydir, name, "node.key"),
                "--http", "127.0.0.1:%d" % (args.http_base + i),
                "--http-root", os.path.join(chat, "www"),
                "--actor", "room_%s=%s" % (ROOMS[i], os.path.join(chat, "room.lua"))]
        if i > 0:
            argv += ["--join", "n1@127.0.0.1:%d" % args.cluster_base]
        argv += [os.path.join(chat, "gate.lua"), str(args.ws_base + i)] + list(ROOMS)
        nodes.append(Node(name, argv, os.path.join(args.dir, name + ".log")))
    return nodes


def ready(args, nodes):
    """True once every node runs its gate and routes to every room."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        for n in nodes:
            if n.proc.poll() is not None:
                print("run-demo: node %s exited %d at start; see %s/%s.log" %
                      (n.name, n.proc.returncode, args.dir, n.name), file=sys.stderr)
                return False
        ok = all(n.count(r"^chat: .* serves WebSocket") for n in nodes)
        if ok:
            for i, _ in enumerate(nodes):
                try:
                    st = json.loads(http_get("http://127.0.0.1:%d/status.json" %
                                             (args.http_base + i)))
                except (OSError, ValueError):
                    ok = False
                    break
                have = {s.get("stage") for node in st.get("nodes", {}).values()
                        if isinstance(node, dict) and node.get("state", "alive") == "alive"
                        for s in node.get("stages", [])}
                if not all("room_" + r in have for r in ROOMS):
                    ok = False
                    break
        if ok:
            return True
        time.sleep(0.2)
    print("run-demo: the cluster was not ready within %d s; logs in %s" % (START_S, args.dir),
          file=sys.stderr)
    return False


def stop(nodes):
    """SIGINT to each node (the last joined first); True when all exited 0."""
    clean = True
    for n in reversed(nodes):
        if n.proc.poll() is None:
            n.proc.send_signal(signal.SIGINT)
            try:
                n.proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                print("run-demo: %s did not stop within %d s; killed" % (n.name, STOP_S),
                      file=sys.stderr)
                n.proc.kill()
                n.proc.wait()
        n.reader.join(5)
        if n.proc.returncode != 0:
            print("run-demo: %s exited %d" % (n.name, n.proc.returncode), file=sys.stderr)
            clean = False
        n.log.close()
    return clean


def own_terminal():
    """When started from a terminal (make run), takes the terminal's foreground in a process
    group of our own, so that Ctrl-C reaches this script alone: make then sees our exit
    status (0 after a clean stop) instead of dying of the signal itself. Returns a function
    that gives the terminal back."""
    if not sys.stdin.isatty():  # run by a test or a pipeline: signals come from them
        return lambda: None
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
        before = os.tcgetpgrp(fd)
    except OSError:
        return lambda: None
    if before != os.getpgrp():  # not in the foreground (started with &): leave it be
        os.close(fd)
        return lambda: None
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.setpgid(0, 0)
        os.tcsetpgrp(fd, os.getpgrp())
    except OSError:
        signal.signal(signal.SIGTTOU, old)
        os.close(fd)
        return lambda: None

    def give_back():
        try:
            os.tcsetpgrp(fd, before)
        except OSError:
            pass
        os.close(fd)
    return give_back


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "stage-node"))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("DEMO_SECONDS") or 0),
                    help="stop after this long (default: DEMO_SECONDS, else run until Ctrl-C)")
    ap.add_argument("--http-base", type=int, default=8080)
    ap.add_argument("--ws-base", type=int, default=8090)
    ap.add_argument("--cluster-base", type=int, default=7401)
    ap.add_argument("--dir", default=os.path.join(ROOT, "build", "demo"))
    args = ap.parse_args()
    if args.seconds < 0:
        ap.error("--seconds must be 0 (until Ctrl-C) or more")
    for b in (args.http_base, args.ws_base, args.cluster_base):
        if not 1 <= b <= 65533:
            ap.error("port bases must be from 1 to 65533")
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        ap.error("no stage-node binary at %s (make build)" % args.binary)
    os.makedirs(args.dir, exist_ok=True)
    keydir = os.path.join(args.dir, "keys")
    make_keys(args.binary, keydir)

    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    give_back = own_terminal()
    try:
        return run(args, keydir, stopping)
    finally:
        give_back()


def run(args, keydir, stopping):
    nodes = start(args, keydir)
    if not ready(args, nodes):
        stop(nodes)
        return 1
    h = args.http_base
    print("\nThe chat demo runs on 3 nodes (rooms: lobby on n1, games on n2, music on n3).")
    print("  chat page:  http://127.0.0.1:%d/app/   (also :%d/app/ and :%d/app/, one per node)"
          % (h, h + 1, h + 2))
    print("  dashboard:  http://127.0.0.1:%d/" % h)
    logs = os.path.relpath(args.dir)
    print("  logs:       %s/n1.log ..." % (args.dir if logs.startswith("..") else logs))
    print("Open the page in two browser windows (or on two nodes), join the same room and chat."
          "\n%s\n" % ("Stops after %g s." % args.seconds if args.seconds
                      else "Ctrl-C stops all three nodes."), flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    died = None
    while not stopping.is_set():
        if deadline and time.monotonic() >= deadline:
            break
        died = next((n for n in nodes if n.proc.poll() is not None), None)
        if died:
            print("run-demo: node %s exited %d; stopping the others" %
                  (died.name, died.proc.returncode), file=sys.stderr)
            break
        stopping.wait(0.2)
    clean = stop(nodes)
    clients = sum(n.count(r"^chat: client \d+ connected") for n in nodes)
    relayed = sum(n.count(r"^chat: room \S+ on \S+ relayed message") for n in nodes)
    print("run-demo: summary: %d messages relayed, %d clients seen, nodes stopped %s"
          % (relayed, clients, "cleanly" if clean and not died else "with errors"), flush=True)
    return 0 if clean and not died else 1


if __name__ == "__main__":
    sys.exit(main())
