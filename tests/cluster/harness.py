"""Harness of the stage-node cluster tests (tests/cluster/).

Python 3 standard library only; pyzmq (Debian python3-zmq) is imported lazily by the
few tests that speak raw ZeroMQ (need_zmq()).

What it guarantees:
  * every process a test starts (nodes, prometheus, chromium, helpers) is tracked and
    killed when the test ends, passes or fails (Ctx.cleanup, try/finally in run.py,
    atexit, and a SIGTERM handler); network namespaces made by the test are deleted;
  * every wait has a deadline and fails with a message saying what it waited for;
    a node that exits while a test waits on it fails the wait at once;
  * each test runs in its own process under a time bound (run.py; default 60 s);
  * on failure the tail of each node's stderr (and stdout) is printed; a node that died
    of a sanitizer report is named with a digest of it (error, access, first frames).
Logs of each node go to build/cluster-logs/TEST/NAME.{out,err}.
"""
import atexit
import html.parser
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("SN_CLUSTER_BINARY", os.path.join(ROOT, "build", "stage-node"))
LOG_ROOT = os.path.join(ROOT, "build", "cluster-logs")
DEFAULT_TIMEOUT = 60

# Short failure-detection settings used by most tests (ms).
FAST = {"heartbeat": 200, "suspect": 1000, "down": 1000}


class TestFailure(AssertionError):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def timeout(seconds):
    """Decorator: the time bound of one test (default DEFAULT_TIMEOUT)."""
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


# ---------------------------------------------------------------- process tracking

_PROCS = []          # every Popen started by this process (atexit safety net)
_NETNS = []          # namespaces created here, deleted at exit


def _kill_all():
    for p in list(_PROCS):
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in list(_PROCS):
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    for ns in list(_NETNS):
        subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        _NETNS.remove(ns)


atexit.register(_kill_all)


def _on_term(signum, frame):
    # run.py sends SIGTERM when a test overruns its bound: fail, cleaning up.
    raise TestFailure("terminated by the runner (signal %d): test over its time bound" % signum)


def install_signal_handlers():
    signal.signal(signal.SIGTERM, _on_term)


def popen(args, **kw):
    p = subprocess.Popen(args, **kw)
    _PROCS.append(p)
    return p


# ---------------------------------------------------------------- small helpers

_GIVEN_PORTS = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host="127.0.0.1"):
    """A TCP port free on host right now, never handed out twice by this process.

    It is drawn from below the kernel's ephemeral range. A port from bind(("", 0)) lies
    inside that range, so any outgoing connection (a node's ZeroMQ connects, a client)
    could take it as its source port between now and the moment a server binds it:
    PostgreSQL once failed to start in CI that way, 1 run in about 20."""
    lo, _ = _ephemeral_range()
    top = min(lo, 32768)
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(500):
        port = rng.randrange(max(1024, top - 12000), top)
        if port in _GIVEN_PORTS:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            continue
        finally:
            s.close()
        _GIVEN_PORTS.add(port)
        return port
    fail("no free port found below the ephemeral range %d" % lo)


def wait_until(fn, timeout, what, interval=0.1):
    """Poll fn() until it returns a truthy value (returned); fail after timeout seconds.
    fn may raise TestFailure to abort at once (e.g. a node died)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
        except TestFailure:
            raise
        except Exception as e:  # a transient error (connection refused...) is retried
            v, last = None, "%s: %s" % (type(e).__name__, e)
        if v:
            return v
        if time.monotonic() >= deadline:
            fail("timed out after %.1f s waiting for %s%s" %
                 (timeout, what, (" (last error: %s)" % last) if last else ""))
        time.sleep(interval)


def http_get(host, port, path="/", timeout=5.0, netns=None):
    """GET http://host:port/path and return (status, body bytes). With netns, the request
    is made from inside that network namespace."""
    url = "http://%s:%d%s" % (host, port, path)
    if netns:
        code = ("import sys,urllib.request,urllib.error\n"
                "try:\n r=urllib.request.urlopen(sys.argv[1],timeout=float(sys.argv[2]))\n"
                " s,b=r.status,r.read()\n"
                "except urllib.error.HTTPError as e:\n s,b=e.code,e.read()\n"
                "sys.stdout.buffer.write(b'%03d'%s+b)\n")
        r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code, url,
                            str(timeout)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 5)
        if r.returncode != 0:
            raise OSError("GET %s in netns %s failed: %s" % (url, netns,
                                                             r.stderr.decode(errors="replace")[-300:]))
        return int(r.stdout[:3]), r.stdout[3:]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_prom(text):
    """Prometheus text format -> list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            fail("unparsable metrics line: %r" % line)
        labels = {}
        body = m.group(3) or ""
        pos = 0
        while pos < len(body):
            lm = _LABEL.match(body, pos)
            if not lm:
                fail("unparsable labels in metrics line: %r" % line)
            labels[lm.group(1)] = (lm.group(2).replace('\\"', '"').replace("\\n", "\n")
                                   .replace("\\\\", "\\"))
            pos = lm.end()
        v = m.group(4)
        out.append((m.group(1), labels, float(v.replace("Inf", "inf"))))
    return out


def prom_value(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`; None if there is none."""
    total, found = 0.0, False
    for n, l, v in samples:
        if n == name and all(l.get(k) == str(x) for k, x in labels.items()):
            total += v
            found = True
    return total if found else None


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "(no file)"
    lines = data.decode(errors="replace").splitlines()
    return "\n".join(lines[-n:])


_SAN_ERROR = re.compile(r"^==\d+==ERROR: (\w+Sanitizer: .*)$|^SUMMARY: (\w+Sanitizer: .*)$"
                        r"|^.*runtime error: .*$", re.M)
_SAN_FRAME = re.compile(r"^\s+#(\d+) 0x[0-9a-f]+ in (\S+) (\S+)", re.M)


def sanitizer_report(path, frames=6):
    """A one-line digest of the first sanitizer report in a log: its error line, the
    access line, and the first frames (function and file:line, a recursion shown once);
    "" when there is none."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except (OSError, TypeError):
        return ""
    m = _SAN_ERROR.search(text)
    if not m:
        return ""
    what = (m.group(1) or m.group(2) or m.group(0)).strip().split(" on address ")[0]
    rest = text[m.end():]
    access = re.search(r"^(READ|WRITE) of size \d+", rest, re.M)
    stack = []
    for fm in _SAN_FRAME.finditer(rest):
        if fm.group(1) == "0" and stack:
            break
        seen = [x.split()[0] for x in stack]
        if not fm.group(2).startswith("__interceptor") and fm.group(2) not in seen:
            stack.append("%s %s" % (fm.group(2), os.path.basename(fm.group(3))))
        if len(stack) >= frames:
            break
    return " [%s%s%s]" % (what, (", " + access.group(0)) if access else "",
                          (" in " + " <- ".join(stack)) if stack else "")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# ---------------------------------------------------------------- Lua helpers

# Prepended to every script written with Ctx.script(): readiness across the cluster.
LUA_PRELUDE = r'''
-- [harness prelude]
stage.waitfor("__ready", function () return process.name end)
-- when_ready(sid, names, fn): call fn once an actor of stage sid answered from each
-- node in names (a list), i.e. the registry of this node routes to all of them.
function when_ready(sid, names, fn)
  local seen, fired, want = {}, false, #names
  stage.waitfor("__ready_ack", function (name) if name then seen[name] = true end end)
  stage.addtask(50, function ()
    if fired then return nil end
    local k = 0
    for _, n in ipairs(names) do if seen[n] then k = k + 1 end end
    if k == want then fired = true; fn(); return nil end
    for i = 1, 2 * want + 2 do stage.signal(sid .. ":__ready=__ready_ack") end
    return 200
  end)
end
-- when_file(path, fn): call fn once the file exists (the harness creates it).
function when_file(path, fn)
  stage.addtask(50, function ()
    local f = io.open(path, "r")
    if f then f:close(); fn(); return nil end
    return 50
  end)
end
function show(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  return table.concat(t, " ")
end
-- [end of prelude]
'''

# An actor file every node may run as stage "probe": answers readiness pings.
PROBE_LUA = 'stage.waitfor("__ready", function () return process.name end)\n'


# ---------------------------------------------------------------- nodes

class Node:
    def __init__(self, ctx, name, port=None, http=True, join=(), cluster=None, sets=None,
                 actors=(), script=None, extra=(), threads=2, netns=None, host="127.0.0.1",
                 http_host=None, insecure=False, binary=None, curve=False):
        self.ctx = ctx
        self.curve = curve  # its own keypair (ctx.curve_key) and the ctx's allow file
        self.name = name
        self.host = host
        self.port = port or free_port()
        self.http_host = http_host or ("127.0.0.1" if netns else host)
        self.http_port = (free_port() if not netns else 8080 + len(ctx.nodes)) if http else None
        self.join = list(join)
        self.cluster = cluster
        self.sets = dict(FAST)
        if sets:
            self.sets.update(sets)
        self.actors = list(actors)
        self.script = script
        self.extra = list(extra)
        self.threads = threads
        self.netns = netns
        self.insecure = insecure
        self.binary = binary or ctx.binary
        self.proc = None
        self.starts = 0
        self.out_path = self.err_path = None

    @property
    def endpoint(self):
        return "tcp://%s:%d" % (self.host, self.port)

    @property
    def addr(self):
        """HOST:PORT for another node's --join."""
        return "%s:%d" % (self.host, self.port)

    def argv(self):
        a = [self.binary, "--name", self.name, "--listen", self.endpoint,
             "--threads", str(self.threads)]
        for j in self.join:
            if isinstance(j, Node):  # with CURVE, NAME@ picks the key the seed must hold
                a += ["--join", ("%s@%s" % (j.name, j.addr)) if self.curve else j.addr]
            else:
                a += ["--join", j]
        if self.curve:
            a += ["--curve-secret", self.ctx.curve_key(self.name),
                  "--curve-allow", self.ctx.curve_allow()]
        if self.cluster:
            a += ["--cluster", self.cluster]
        if self.http_port:
            a += ["--http", "%s:%d" % (self.http_host, self.http_port)]
        # a node without keys must say so (docs/security.md)
        if self.insecure or not (self.curve or "--curve-secret" in self.extra):
            a.append("--insecure")
        for k, v in sorted(self.sets.items()):
            a += ["--set", "%s=%s" % (k, v)]
        for sid, path, n in self.actors:
            a += ["--actor", "%s=%s:%d" % (sid, path, n)]
        a += self.extra
        if self.script:
            a.append(self.script)
        if self.netns:
            a = ["ip", "netns", "exec", self.netns] + a
        return a

    def start(self):
        self.starts += 1
        suffix = "" if self.starts == 1 else ".%d" % self.starts
        self.out_path = os.path.join(self.ctx.logdir, self.name + suffix + ".out")
        self.err_path = os.path.join(self.ctx.logdir, self.name + suffix + ".err")
        argv = self.argv()
        with open(os.path.join(self.ctx.logdir, self.name + suffix + ".cmd"), "w") as f:
            f.write(" ".join(argv) + "\n")
        out = open(self.out_path, "wb")
        err = open(self.err_path, "wb")
        try:
            self.proc = popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                              cwd=ROOT)
        finally:
            out.close()
            err.close()
        self.started_at = time.monotonic()
        return self

    # -- liveness
    @property
    def pid(self):
        """The pid of stage-node itself (ip netns exec execs it, so it is the same)."""
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ensure_alive(self):
        if not self.alive():
            last = tail(self.err_path, 1).strip()
            fail("node %s exited (status %s) unexpectedly%s; stderr:\n%s" %
                 (self.name, self.proc.returncode if self.proc else None,
                  sanitizer_report(self.err_path) or
                  (" (last line: %s)" % last[:200] if last and last != "(no file)" else ""),
                  tail(self.err_path, 20)))

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.killed_at = time.monotonic()

    def term(self, timeout=10):
        """SIGTERM, then wait for the exit; returns the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            fail("node %s did not exit within %.0f s of SIGTERM" % (self.name, timeout))

    def restart(self):
        if self.alive():
            self.kill9()
        return self.start()

    def stop(self):
        """SIGSTOP: the process freezes (sockets stay open, nothing is read or sent)."""
        self.ensure_alive()
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped_at = time.monotonic()

    def cont(self):
        """SIGCONT after stop()."""
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self.continued_at = time.monotonic()

    def fds(self):
        self.ensure_alive()
        return fd_count(self.pid)

    # -- output
    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def lines(self):
        return self.stdout().splitlines()

    def wait_line(self, pattern, timeout=15, count=1, after=0):
        """Wait until `count` stdout lines (from line index `after` on) match the regex;
        returns the list of matching lines."""
        rx = re.compile(pattern)

        def look():
            got = [l for l in self.lines()[after:] if rx.search(l)]
            if len(got) >= count:
                return got
            self.ensure_alive()
            return None
        return wait_until(look, timeout, "%d stdout line(s) of %s matching /%s/" %
                          (count, self.name, pattern))

    def wait_stderr(self, pattern, timeout=15, flags=re.I, allow_exit=False):
        rx = re.compile(pattern, flags)

        def look():
            m = rx.search(self.stderr())
            if m:
                return m.group(0)
            if not allow_exit:
                self.ensure_alive()
            return None
        return wait_until(look, timeout, "stderr of %s matching /%s/" % (self.name, pattern))

    # -- HTTP
    def get(self, path, timeout=5.0):
        return http_get(self.http_host, self.http_port, path, timeout, netns=self.netns)

    def status(self):
        self.ensure_alive()
        code, body = self.get("/status.json")
        check(code == 200, "%s /status.json answered HTTP %d" % (self.name, code))
        try:
            return json.loads(body)
        except ValueError as e:
            fail("%s /status.json is not JSON (%s): %r" % (self.name, e, body[:200]))

    def members(self):
        return {m["name"]: m for m in self.status().get("members", [])}

    def metrics_text(self):
        self.ensure_alive()
        code, body = self.get("/metrics")
        check(code == 200, "%s /metrics answered HTTP %d" % (self.name, code))
        return body.decode()

    def metrics(self):
        return parse_prom(self.metrics_text())

    def metric(self, name, **labels):
        return prom_value(self.metrics(), name, **labels)

    # -- membership waits
    def wait_members(self, names, state="alive", timeout=15):
        """Wait until this node's member list holds exactly `names`, all in `state`."""
        names = set(n.name if isinstance(n, Node) else n for n in names)

        def look():
            ms = self.members()
            if set(ms) == names and all(m["state"] == state for m in ms.values()):
                return ms
            look.last = {k: v.get("state") for k, v in ms.items()}
            return None
        look.last = None
        try:
            return wait_until(look, timeout, "%s to see members %s all %s" %
                              (self.name, sorted(names), state), interval=0.15)
        except TestFailure as e:
            fail("%s (last view: %s)" % (e, look.last))

    def wait_member_state(self, member, state, timeout=15):
        member = member.name if isinstance(member, Node) else member

        def look():
            m = self.members().get(member)
            look.last = m and m.get("state")
            return m if m and m["state"] == state else None
        look.last = None
        try:
            return wait_until(look, timeout, "%s to see %s %s" % (self.name, member, state),
                              interval=0.1)
        except TestFailure as e:
            fail("%s (last state: %s)" % (e, look.last))


class Ctx:
    """One test's context: its log folder, its nodes and processes, its cleanup."""

    def __init__(self, test_name, binary=None):
        self.test_name = test_name
        self.binary = binary or BINARY
        self.logdir = os.path.join(LOG_ROOT, test_name)
        shutil.rmtree(self.logdir, ignore_errors=True)
        os.makedirs(self.logdir)
        self.nodes = []
        self.procs = []
        self.netns = []
        self.cleanups = []
        self.tmp = tempfile.mkdtemp(prefix="sn-cluster-")

    # -- files
    def path(self, name):
        return os.path.join(self.logdir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def script(self, name, body):
        """Write a Lua file (with the harness prelude) into the test's folder."""
        return self.write(name, LUA_PRELUDE + body)

    def probe(self):
        p = self.path("probe.lua")
        if not os.path.exists(p):
            self.write("probe.lua", PROBE_LUA)
        return p

    def touch(self, name):
        self.write(name, "go\n")

    # -- CurveZMQ: one keypair per node, one allow file ("KEY NAME" lines) for the ctx
    def curve_key(self, name):
        """The secret key file of node name (made with `stage-node keygen` once)."""
        path = os.path.join(self.tmp, name + ".key")
        if not os.path.exists(path):
            r = self.run([self.binary, "keygen", path], timeout=10)
            check(r.returncode == 0, "keygen %s: %s" % (path, r.stderr.decode()))
        return path

    def curve_public(self, name):
        self.curve_key(name)
        with open(os.path.join(self.tmp, name + ".key.pub")) as f:
            return f.read().strip()

    def curve_allow(self, names=None, extra=""):
        """The allow file: every name given so far (names: set them, before nodes start)."""
        if names is not None:
            self._curve_names = list(names)
        path = os.path.join(self.tmp, "allow.keys")
        text = "".join("%s %s\n" % (self.curve_public(n), n)
                       for n in getattr(self, "_curve_names", [])) + extra
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- processes
    def node(self, name, start=True, **kw):
        n = Node(self, name, **kw)
        self.nodes.append(n)
        if start:
            n.start()
        return n

    def spawn(self, argv, name, **kw):
        """Start a helper process (prometheus, ...) logging to the test's folder."""
        out = open(self.path(name + ".out"), "wb")
        err = open(self.path(name + ".err"), "wb")
        try:
            p = popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, **kw)
        finally:
            out.close()
            err.close()
        p.log_name = name
        self.procs.append(p)
        return p

    def run(self, argv, timeout=30, **kw):
        """Run a command to completion (bounded); returns CompletedProcess."""
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, **kw)
        except subprocess.TimeoutExpired:
            fail("command over its %d s bound: %s" % (timeout, " ".join(argv)))

    def add_cleanup(self, fn):
        self.cleanups.append(fn)

    def cleanup(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                print("cleanup error: %s" % e, file=sys.stderr)
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.kill()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in [n.proc for n in self.nodes if n.proc] + self.procs:
            try:
                p.wait(timeout=5)
            except Exception:
                pass
        for ns in list(self.netns):
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            self.netns.remove(ns)
            if ns in _NETNS:
                _NETNS.remove(ns)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def report(self, out=sys.stdout):
        """The tails of every node's logs (printed when a test fails)."""
        for n in self.nodes:
            if not n.err_path:
                continue
            state = ("running" if n.alive() else "exited %s" % n.proc.returncode)
            out.write("---- %s (%s) stderr tail: %s\n%s\n" % (n.name, state, n.err_path,
                                                            tail(n.err_path)))
            out.write("---- %s stdout tail: %s\n%s\n" % (n.name, n.out_path,
                                                        tail(n.out_path, 15)))
        for p in self.procs:
            out.write("---- %s stderr tail:\n%s\n" % (p.log_name,
                                                      tail(self.path(p.log_name + ".err"), 15)))

    # -- network namespaces (root only)
    def need_netns(self):
        if os.geteuid() != 0:
            fail("the partition tests need network namespaces, which need root (running as "
                 "uid %d); make test runs as root in CI" % os.geteuid())
        if not shutil.which("ip"):
            fail("no 'ip' command (Debian package iproute2, installed by scripts/deps.sh)")
        probe = "snt%d-probe" % os.getpid()
        r = subprocess.run(["ip", "netns", "add", probe], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            fail("'ip netns add' is impossible here, so partitions cannot be tested: %s" %
                       r.stderr.decode(errors="replace").strip())
        subprocess.run(["ip", "netns", "del", probe])

    def sh(self, *argv, ns=None, check_rc=True):
        a = list(argv)
        if ns:
            a = ["ip", "netns", "exec", ns] + a
        r = self.run(a, timeout=20)
        if check_rc and r.returncode != 0:
            fail("command failed (%d): %s\n%s" % (r.returncode, " ".join(a),
                                                 r.stderr.decode(errors="replace")))
        return r

    def star(self, roles, subnet="10.77.0"):
        """Namespaces named after roles (e.g. "a","b","c") around a bridge in a hub
        namespace: role i gets SUBNET.(i+1)/24 on its eth0 and the hub side of its veth
        is "v<role>" in the hub. Returns {role: (netns, address)} and the hub name."""
        run_id = os.environ.get("SNT_RUN_ID", "snt%d" % os.getpid())
        hub = "%s-hub" % run_id
        self._add_ns(hub)
        self.sh("ip", "link", "set", "lo", "up", ns=hub)
        self.sh("ip", "link", "add", "br0", "type", "bridge", ns=hub)
        self.sh("ip", "link", "set", "br0", "up", ns=hub)
        out = {}
        for i, role in enumerate(roles):
            ns = "%s-%s" % (run_id, role)
            self._add_ns(ns)
            tmp = "snt%x%s" % (os.getpid() % 0xfffff, role)  # <= 15 chars
            self.sh("ip", "link", "add", tmp[:15], "type", "veth", "peer", "name",
                    ("v" + tmp)[:15])
            self.sh("ip", "link", "set", tmp[:15], "netns", ns)
            self.sh("ip", "link", "set", ("v" + tmp)[:15], "netns", hub)
            self.sh("ip", "link", "set", tmp[:15], "name", "eth0", ns=ns)
            self.sh("ip", "link", "set", ("v" + tmp)[:15], "name", "v" + role, ns=hub)
            self.sh("ip", "link", "set", "v" + role, "master", "br0", ns=hub)
            self.sh("ip", "link", "set", "v" + role, "up", ns=hub)
            addr = "%s.%d" % (subnet, i + 1)
            self.sh("ip", "addr", "add", addr + "/24", "dev", "eth0", ns=ns)
            self.sh("ip", "link", "set", "eth0", "up", ns=ns)
            self.sh("ip", "link", "set", "lo", "up", ns=ns)
            out[role] = (ns, addr)
        # wait until each namespace reaches the others (bridge learning, DAD)
        for role, (ns, addr) in out.items():
            for other, (_, oaddr) in out.items():
                if other != role:
                    wait_until(lambda: self.run(["ip", "netns", "exec", ns, "ping", "-c", "1",
                                                 "-W", "1", oaddr], timeout=5).returncode == 0
                               if shutil.which("ping") else True,
                               10, "ping %s -> %s" % (role, other))
        return out, hub

    def _add_ns(self, ns):
        subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.sh("ip", "netns", "add", ns)
        self.netns.append(ns)
        _NETNS.append(ns)


def converged(nodes, timeout=20):
    """Wait until every node sees exactly `nodes` as alive members, with the same
    incarnation for each member in every view; returns {member: incarnation}."""
    names = set(n.name for n in nodes)

    def look():
        views = {}
        for n in nodes:
            ms = n.members()
            if set(ms) != names or any(m["state"] != "alive" for m in ms.values()):
                look.last = (n.name, {k: v["state"] for k, v in ms.items()})
                return None
            views[n.name] = {k: v["incarnation"] for k, v in ms.items()}
        first = next(iter(views.values()))
        if all(v == first for v in views.values()):
            return first
        look.last = views
        return None
    look.last = None
    try:
        return wait_until(look, timeout, "members %s to converge, all alive" % sorted(names),
                          interval=0.2)
    except TestFailure as e:
        fail("%s (last: %s)" % (e, look.last))


# ---------------------------------------------------------------- raw wire (proto/WIRE.md)

MAGIC = 0xC1
K_HELLO, K_WELCOME, K_HEARTBEAT, K_GOSSIP, K_REGISTRY, K_MESSAGE, K_REPLY, K_ERROR, \
    K_LEAVE, K_STATUS_REQ, K_STATUS = range(1, 12)


class Bin(bytes):
    """A bytes value to encode as MessagePack bin (plain str encodes as str)."""


def mp_pack(v):
    """A small canonical MessagePack encoder (enough for wire frames)."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if v >= 0:
            for code, fmt, lim in ((0xcc, ">B", 1 << 8), (0xcd, ">H", 1 << 16),
                                   (0xce, ">I", 1 << 32), (0xcf, ">Q", 1 << 64)):
                if v < lim:
                    return bytes([code]) + struct.pack(fmt, v)
        if v >= -32:
            return struct.pack(">b", v)
        for code, fmt, lim in ((0xd0, ">b", 1 << 7), (0xd1, ">h", 1 << 15),
                               (0xd2, ">i", 1 << 31), (0xd3, ">q", 1 << 63)):
            if -lim <= v:
                return bytes([code]) + struct.pack(fmt, v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, Bin):
        n = len(v)
        if n < 256:
            return b"\xc4" + bytes([n]) + v
        if n < 65536:
            return b"\xc5" + struct.pack(">H", n) + v
        return b"\xc6" + struct.pack(">I", n) + v
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        if n < 65536:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(v, (list, tuple)):
        n = len(v)
        h = bytes([0x90 | n]) if n < 16 else (b"\xdc" + struct.pack(">H", n) if n < 65536
                                              else b"\xdd" + struct.pack(">I", n))
        return h + b"".join(mp_pack(x) for x in v)
    if isinstance(v, dict):
        items = sorted(v.items()) if all(isinstance(k, int) for k in v) else list(v.items())
        n = len(items)
        h = bytes([0x80 | n]) if n < 16 else (b"\xde" + struct.pack(">H", n) if n < 65536
                                              else b"\xdf" + struct.pack(">I", n))
        return h + b"".join(mp_pack(k) + mp_pack(x) for k, x in items)
    raise TypeError("cannot pack %r" % (v,))


def mp_unpack(b, pos=0):
    """Decode one MessagePack value at pos; returns (value, new pos)."""
    t = b[pos]
    pos += 1
    if t < 0x80:
        return t, pos
    if t >= 0xe0:
        return t - 256, pos
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        if t <= 0x8f:
            n = t & 0x0f
        elif t == 0xde:
            n, = struct.unpack_from(">H", b, pos); pos += 2
        else:
            n, = struct.unpack_from(">I", b, pos); pos += 4
        d = {}
        for _ in range(n):
            k, pos = mp_unpack(b, pos)
            d[k], pos = mp_unpack(b, pos)
        return d, pos
    if 0x90 <= t <= 0x9f or t in (0xdc, 0xdd):
        if t <= 0x9f:
            n = t & 0x0f
        elif t == 0xdc:
            n, = struct.unpack_from(">H", b, pos); pos += 2
        else:
            n, = struct.unpack_from(">I", b, pos); pos += 4
        a = []
        for _ in range(n):
            x, pos = mp_unpack(b, pos)
            a.append(x)
        return a, pos
    if 0xa0 <= t <= 0xbf or t in (0xd9, 0xda, 0xdb):
        if t <= 0xbf:
            n = t & 0x1f
        else:
            w = {0xd9: 1, 0xda: 2, 0xdb: 4}[t]
            n = int.from_bytes(b[pos:pos + w], "big"); pos += w
        return b[pos:pos + n].decode(errors="replace"), pos + n
    if t in (0xc4, 0xc5, 0xc6):
        w = {0xc4: 1, 0xc5: 2, 0xc6: 4}[t]
        n = int.from_bytes(b[pos:pos + w], "big"); pos += w
        return Bin(b[pos:pos + n]), pos + n
    if t == 0xc0:
        return None, pos
    if t in (0xc2, 0xc3):
        return t == 0xc3, pos
    if t in (0xcc, 0xcd, 0xce, 0xcf):
        w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]
        return int.from_bytes(b[pos:pos + w], "big"), pos + w
    if t in (0xd0, 0xd1, 0xd2, 0xd3):
        w = {0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]
        return int.from_bytes(b[pos:pos + w], "big", signed=True), pos + w
    if t == 0xca:
        return struct.unpack_from(">f", b, pos)[0], pos + 4
    if t == 0xcb:
        return struct.unpack_from(">d", b, pos)[0], pos + 8
    if t in (0xd4, 0xd5, 0xd6, 0xd7, 0xd8):
        n = {0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}[t]
        return ("ext", b[pos], b[pos + 1:pos + 1 + n]), pos + 1 + n
    if t in (0xc7, 0xc8, 0xc9):
        w = {0xc7: 1, 0xc8: 2, 0xc9: 4}[t]
        n = int.from_bytes(b[pos:pos + w], "big"); pos += w
        return ("ext", b[pos], b[pos + 1:pos + 1 + n]), pos + 1 + n
    raise ValueError("bad MessagePack type byte 0x%02x" % t)


def frame(kind, fields, version=1):
    """A wire frame: magic, version, kind, then the field map."""
    return bytes([MAGIC, version, kind]) + mp_pack(fields)


def unframe(data):
    """(version, kind, fields) of a frame; fields is None when it is not version 1."""
    if len(data) < 3 or data[0] != MAGIC:
        raise ValueError("not a frame: %r" % data[:8])
    if data[1] != 1:
        return data[1], data[2], None
    fields, _ = mp_unpack(data, 3)
    return data[1], data[2], fields


def snapshot(*values):
    """A snapshot (proto/SNAPSHOT.md) of plain values: version byte, then an array."""
    return Bin(b"\x01" + mp_pack(list(values)))


def hello_fields(cluster, node, incarnation, endpoint, http="", flags=0):
    return {1: cluster, 2: node, 3: incarnation, 4: 1, 5: endpoint, 6: http, 7: flags,
            8: "stage-node-tests 0"}


def need_websockets():
    """Import websockets (Debian python3-websockets), or fail saying how to get it."""
    try:
        import websockets  # Debian python3-websockets
    except ImportError:
        fail("python3-websockets is missing (scripts/deps.sh test)")
    return websockets


def need_zmq():
    """Import pyzmq (Debian python3-zmq); also looks in Debian's dist-packages when the
    running interpreter is another build of the same Python version."""
    try:
        import zmq  # noqa: F401
        return zmq
    except ImportError:
        pass
    d = "/usr/lib/python3/dist-packages"
    if os.path.isdir(os.path.join(d, "zmq")) and d not in sys.path:
        sys.path.append(d)
        try:
            import zmq  # noqa: F401
            return zmq
        except ImportError:
            pass
    fail("pyzmq is missing: install the Debian package python3-zmq")


class RawPeer:
    """A raw ZeroMQ DEALER speaking (or mis-speaking) the wire protocol to a node."""

    def __init__(self, ctx, endpoint, curve_server_key=None, curve_keypair=None):
        zmq = self.zmq = need_zmq()
        self.zctx = zmq.Context.instance()
        self.sock = self.zctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RECONNECT_IVL, -1)   # a cut-off peer stays cut off
        if curve_server_key is not None:
            pub, sec = curve_keypair
            self.sock.curve_serverkey = curve_server_key
            self.sock.curve_publickey = pub
            self.sock.curve_secretkey = sec
        self.monitor = self.sock.get_monitor_socket()
        self.sock.connect(endpoint)
        self.events = []
        ctx.add_cleanup(self.close)

    def send(self, data):
        self.sock.send(data, copy=True)

    def recv(self, timeout=3.0):
        """The next frame the node sent, or None after timeout seconds."""
        if self.sock.poll(int(timeout * 1000)):
            return self.sock.recv()
        return None

    def recv_kind(self, kinds, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            d = self.recv(left)
            if d is None:
                return None
            try:
                v, k, f = unframe(d)
            except ValueError:
                continue
            if k in kinds:
                return v, k, f

    def poll_events(self, timeout=0.0):
        from zmq.utils.monitor import recv_monitor_message
        deadline = time.monotonic() + timeout
        while True:
            left = max(0, deadline - time.monotonic())
            if not self.monitor.poll(int(left * 1000)):
                return self.events
            self.events.append(recv_monitor_message(self.monitor)["event"])

    def wait_event(self, event, timeout=5.0):
        deadline = time.monotonic() + timeout
        while event not in self.events and time.monotonic() < deadline:
            self.poll_events(min(0.2, max(0, deadline - time.monotonic())))
        return event in self.events

    def close(self):
        try:
            self.sock.disable_monitor()
        except Exception:
            pass
        for s in (self.monitor, self.sock):
            try:
                s.close(0)
            except Exception:
                pass


# ---------------------------------------------------------------- dashboard DOM

class _DataNodes(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-node" in a:
            self.found.setdefault(a["data-node"], set()).add(a.get("data-state"))


def dom_node_states(dom):
    """{node name: set of data-state values} of the elements with data-node."""
    p = _DataNodes()
    p.feed(dom)
    return p.found


def chromium_binary():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(c):
            return shutil.which(c)
    fail("no chromium: install the Debian package chromium")


def chromium(ctx, url, *extra, timeout=60):
    """Run headless Chromium on url (with extra flags, e.g. --dump-dom); returns stdout."""
    udd = tempfile.mkdtemp(prefix="chromium-", dir=ctx.tmp)
    argv = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            "--user-data-dir=" + udd] + list(extra) + [url]
    # its own process group, so that its helper processes die with it
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    _PROCS.append(p)

    def killgroup():
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    ctx.add_cleanup(killgroup)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        killgroup()
        p.communicate()
        fail("chromium over its %d s bound on %s" % (timeout, url))
    killgroup()
    with open(ctx.path("chromium.err"), "ab") as f:
        f.write(err)
    if p.returncode != 0:
        fail("chromium exited %d on %s: %s" % (p.returncode, url,
                                               err.decode(errors="replace")[-500:]))
    return out.decode(errors="replace")


# ---------------------------------------------------------------- Prometheus

def start_prometheus(ctx, targets, interval="1s"):
    """Start /usr/bin/prometheus scraping targets (a list of "host:port") every interval;
    returns its HTTP port once it is ready."""
    exe = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.path.exists(exe):
        fail("no prometheus: install the Debian package prometheus")
    port = free_port()
    cfg = ("global:\n  scrape_interval: %s\n  evaluation_interval: %s\n"
           "scrape_configs:\n  - job_name: stage\n    scrape_interval: %s\n"
           "    scrape_timeout: %s\n    static_configs:\n      - targets: [%s]\n" %
           (interval, interval, interval, interval,
            ", ".join('"%s"' % t for t in targets)))
    cfg_path = ctx.write("prometheus.yml", cfg)
    tsdb = tempfile.mkdtemp(prefix="tsdb-", dir=ctx.tmp)
    ctx.spawn([exe, "--config.file=" + cfg_path, "--storage.tsdb.path=" + tsdb,
               "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
              "prometheus")
    wait_until(lambda: http_get("127.0.0.1", port, "/-/ready", 2)[0] == 200, 30,
               "prometheus to be ready on port %d" % port, interval=0.2)
    return port


def prom_query(port, query):
    """Instant query through Prometheus' HTTP API: list of (labels, float value)."""
    import urllib.parse
    code, body = http_get("127.0.0.1", port, "/api/v1/query?query=" +
                          urllib.parse.quote(query), 5)
    check(code == 200, "prometheus query %r answered HTTP %d: %r" % (query, code, body[:300]))
    doc = json.loads(body)
    check(doc.get("status") == "success", "prometheus query %r failed: %r" % (query, doc))
    return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]


def promtool_check(ctx, text):
    """`promtool check metrics` on text (stdin): (exit status, output)."""
    exe = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(exe):
        fail("no promtool: install the Debian package prometheus")
    r = ctx.run([exe, "check", "metrics"], input=text.encode(), timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def shape_link(ctx, ns, dev="eth0", delay="100ms", rate="2mbit"):
    """Shape dev's egress in ns: netem delay+rate; where the kernel has no netem qdisc
    (e.g. some VM kernels), a tbf at the same rate (no added delay). Returns a
    description of what was applied."""
    r = ctx.sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", delay, "rate",
               rate, ns=ns, check_rc=False)
    if r.returncode == 0:
        return "netem delay %s rate %s" % (delay, rate)
    why = r.stderr.decode(errors="replace").strip()
    if "unknown" not in why.lower():
        fail("tc netem failed: %s" % why)
    ctx.sh("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "32kbit",
           "latency", "10s", ns=ns)
    return "tbf rate %s (this kernel has no netem: %s)" % (rate, why)


def start_cluster(ctx, specs, seed_first=True, wait=True, timeout=20, curve=False):
    """Start nodes from specs [(name, kwargs)...]: the first is the seed, each other joins
    it. Waits until all converge (alive, same view) unless wait=False. curve: every node with
    its own CurveZMQ keypair, all of them in the allow file. Returns the nodes."""
    nodes = []
    if curve:
        ctx.curve_allow([name for name, _ in specs])
    for i, (name, kw) in enumerate(specs):
        kw = dict(kw)
        if curve:
            kw.setdefault("curve", True)
        if i > 0 and seed_first and "join" not in kw:
            kw["join"] = [nodes[0]]
        nodes.append(ctx.node(name, **kw))
    if wait:
        converged(nodes, timeout)
    return nodes
