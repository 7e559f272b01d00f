#!/usr/bin/python3
"""What the identity checks of issue 12 cost per frame, in instructions (deterministic,
unlike wall time on a shared VM): two release nodes with CurveZMQ and a keypair each, both
under callgrind; node A makes N serial calls to B, then sends M one-way messages to B.
Callgrind's counters are dumped (and zeroed) at each phase's edges, so each phase's
profile holds that phase alone. For each phase it prints the instructions of both
processes per call (per message), and those of the identity work:

  sn_gate_check           the claimed source against the connection's authenticated name
  sn_curve_trust_bytecode whether a frame's payload may carry code (per frame)
  zmq_msg_gets            the ZAP User-Id of a frame from the listening socket (per frame)

    python3 tests/bench/identity_callgrind.py build/bench/stage-node [N [M]]

docs/benchmarks-notes.md ("What identity per node costs") has the figures."""
import os
import re
import subprocess
import sys
import tempfile
import time

CHECKS = ("sn_gate_check", "sn_curve_trust_bytecode", "zmq_msg_gets")

F_LUA = "stage.waitfor('echo', function (x) return x end)\n" \
        "stage.waitfor('ping', function () return 'f' end)\n"
SINK_LUA = "local n = 0\n" \
           "stage.waitfor('x', function () n = n + 1 end)\n" \
           "stage.waitfor('count', function () return n end)\n" \
           "stage.waitfor('ping', function () return 'sink' end)\n"
# Phases start when the harness creates a file, so that callgrind's counters can be dumped
# between them with both nodes idle.
DRIVER_LUA = r'''
local N, M, DIR = %d, %d, "%s"
local function when_file(name, fn)
  stage.addtask(50, function ()
    local f = io.open(DIR .. "/" .. name, "r")
    if f then f:close(); fn(); return nil end
    return 50
  end)
end
local seen, started = {}, false
stage.waitfor("pong", function (who)
  if who then seen[who] = true end
  if seen.sink and seen.f and not started then started = true; print("READY") end
end)
stage.addtask(20, function ()
  if started then return nil end
  stage.signal("sink:ping=pong"); stage.signal("f:ping=pong")
  return 100
end)
local i = 0
stage.waitfor("rep", function (v)
  if v ~= i then print("BAD " .. tostring(v)) end
  i = i + 1
  if i == N then print("RR_DONE"); return end
  stage.signal("f:echo=rep", i)
end)
when_file("go1", function () stage.signal("f:echo=rep", 0) end)
-- one-way messages in windows of W: W signals, then a round trip that returns once the
-- sink has taken them all (one actor, in order), so no mailbox overflows under valgrind
local W, sent = 200, 0
local payload = ("x"):rep(64)
local function window()
  local k = 0
  while k < W and sent < M do
    if stage.signal("sink:x", payload) == 0 then break end
    k, sent = k + 1, sent + 1
  end
  stage.signal("sink:count=counted")
end
stage.waitfor("counted", function (n, err)
  if n == nil then print("BAD count " .. tostring(err)); return end
  if n < sent then stage.addtask(5, function () stage.signal("sink:count=counted") end); return end
  if sent < M then return window() end
  print("OW_DONE " .. n)
end)
when_file("go2", window)
'''


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_line(path, word, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path) as f:
            for line in f:
                if line.startswith(word):
                    return line.strip()
        time.sleep(0.2)
    sys.exit("timed out waiting for %s in %s" % (word, path))


def dump(pids, tag):
    for p in pids:
        subprocess.run(["callgrind_control", "-d", tag, str(p)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def costs(path):
    """(total Ir, {function: inclusive Ir}) of one callgrind dump."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         check=True, capture_output=True, text=True).stdout
    total = int(re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", out, re.M)
                .group(1).replace(",", ""))
    fn = {}
    for name in CHECKS:
        m = re.search(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+\S*:" + name + r"\b", out, re.M)
        fn[name] = int(m.group(1).replace(",", "")) if m else 0
    return total, fn


def main(argv):
    binary = os.path.abspath(argv[1])
    n = int(argv[2]) if len(argv) > 2 else 2000
    m = int(argv[3]) if len(argv) > 3 else 20000
    d = tempfile.mkdtemp(prefix="sn-identity-cg-")
    for name in ("A", "B"):
        subprocess.run([binary, "keygen", "%s/%s.key" % (d, name)], check=True,
                       stdout=subprocess.DEVNULL)
    with open("%s/allow.keys" % d, "w") as f:
        for name in ("A", "B"):
            f.write(open("%s/%s.key.pub" % (d, name)).read().strip() + " " + name + "\n")
    for name, text in (("f.lua", F_LUA), ("sink.lua", SINK_LUA),
                       ("driver.lua", DRIVER_LUA % (n, m, d))):
        with open("%s/%s" % (d, name), "w") as f:
            f.write(text)
    pb, pa = free_port(), free_port()
    vg = ["valgrind", "--tool=callgrind", "--dump-instr=no"]
    # valgrind runs a node 50-100 times slower: no peer may be suspected for that
    common = ["--threads", "2", "--curve-allow", d + "/allow.keys", "--set", "suspect=600000",
              "--set", "down=600000", "--set", "reply_timeout=600000"]
    procs = []
    try:
        procs.append(subprocess.Popen(
            vg + ["--callgrind-out-file=%s/cg.B.%%p" % d, binary, "--name", "B", "--listen",
                  "tcp://127.0.0.1:%d" % pb, "--curve-secret", d + "/B.key",
                  "--actor", "f=%s/f.lua:1" % d, "--actor", "sink=%s/sink.lua:1" % d] + common,
            stdout=open(d + "/B.out", "w"), stderr=open(d + "/B.err", "w")))
        procs.append(subprocess.Popen(
            vg + ["--callgrind-out-file=%s/cg.A.%%p" % d, binary, "--name", "A", "--listen",
                  "tcp://127.0.0.1:%d" % pa, "--curve-secret", d + "/A.key",
                  "--join", "B@127.0.0.1:%d" % pb] + common + [d + "/driver.lua"],
            stdout=open(d + "/A.out", "w"), stderr=open(d + "/A.err", "w")))
        pids = [p.pid for p in procs]
        wait_line(d + "/A.out", "READY", 300)
        time.sleep(1)
        dump(pids, "start")
        open(d + "/go1", "w").close()
        wait_line(d + "/A.out", "RR_DONE", 1800)
        time.sleep(0.5)
        dump(pids, "rr")
        open(d + "/go2", "w").close()
        wait_line(d + "/A.out", "OW_DONE", 1800)
        time.sleep(0.5)
        dump(pids, "oneway")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    with open(d + "/A.out") as f:
        if "BAD" in f.read():
            sys.exit("wrong replies: see %s/A.out" % d)
    print("| phase | per | instructions, both nodes | identity checks | share | "
          + " | ".join(CHECKS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(CHECKS))
    # each process's dumps are numbered in order: .1 start, .2 rr, .3 oneway
    for part, phase, count, per in ((2, "rr", n, "serial call"),
                                    (3, "oneway", m, "one-way message")):
        total, fn = 0, dict.fromkeys(CHECKS, 0)
        for f in sorted(os.listdir(d)):
            if re.fullmatch(r"cg\.[AB]\.\d+\.%d" % part, f):
                t, c = costs(os.path.join(d, f))
                total += t
                for k in CHECKS:
                    fn[k] += c[k]
        checks = sum(fn.values())
        print("| %s | %s | %.0f | %.0f | %.2f%% | %s |" % (
            phase, per, total / count, checks / count, 100.0 * checks / total,
            " | ".join("%.1f" % (fn[k] / count) for k in CHECKS)))
    print("(files in %s)" % d)


if __name__ == "__main__":
    main(sys.argv)
