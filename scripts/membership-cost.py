#!/usr/bin/env python3
"""Membership cost: what an idle node pays for the size of its cluster (issue 11).

  python3 scripts/membership-cost.py [--binary build/release/stage-node] [--sizes 10,30,50]
                                     [--idle 20] [--json FILE] [--set KEY=VALUE ...]

For each size N: starts N idle nodes on loopback (`--threads 1`, no actor, no script,
default failure-detection settings, each with `--http` so that convergence can be seen),
all joining through the first; waits until every node sees N alive members; then leaves
them alone for --idle seconds and reads, per node, from /proc:
  * CPU: % of one core over the idle window (utime+stime of /proc/PID/stat),
  * open file descriptors (/proc/PID/fd),
  * RSS (VmRSS of /proc/PID/status) and threads (Threads:),
  * bytes sent to other nodes per second (stage_wire_bytes_total{direction="out"} of
    /metrics, read just before and just after the window).
Prints the median and range over the nodes for each N, then a least-squares fit of each
per-node figure against N (a + b*N, and the exponent k of c*N^k) with its value at 1,000
nodes. Nothing is polled during the idle window. Also per size: how many "-> suspect" lines
the nodes logged in all (0 when idle detection is quiet), and the bytes of one member's
status view as the first node holds it (part of what a member record costs). --set is
passed to every node (e.g. --set link_idle=0 for links that never close).
Standard library only; Linux only.
"""
import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cluster"))
from harness import free_port  # noqa: E402  (ports below the ephemeral range)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROCS = []


def ports(n):
    """2n distinct free ports (cluster, http)."""
    got = set()
    while len(got) < 2 * n:
        got.add(free_port())
    got = sorted(got)
    return list(zip(got[0::2], got[1::2]))


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
    for p in PROCS:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    PROCS.clear()


def members(http_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/status.json" % http_port, timeout=5) as r:
        doc = json.loads(r.read())
    return {m["name"]: m["state"] for m in doc.get("members", [])}


class Failed(Exception):
    """A size that could not be measured (a node died, or no convergence)."""


def last_line(path):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""
    except OSError:
        return ""


def converged(nodes):
    names = {n["name"] for n in nodes}
    for n in nodes:
        if n["proc"].poll() is not None:
            raise Failed("node %s exited (status %s): %s" % (
                n["name"], n["proc"].returncode, last_line(n["log"])))
        try:
            ms = members(n["http"])
        except OSError:
            return False
        if set(ms) != names or any(s != "alive" for s in ms.values()):
            return False
    return True


def wire_bytes_out(http_port):
    """stage_wire_bytes_total{direction="out"} of a node's /metrics, or None."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("stage_wire_bytes_total{") and 'direction="out"' in line:
            return float(line.split()[-1])
    return None


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])      # utime, stime (fields 14 and 15)


def status_fields(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def suspicions(nodes):
    """How many "-> suspect" lines all nodes logged so far."""
    total = 0
    for x in nodes:
        try:
            with open(x["log"], "rb") as f:
                total += f.read().count(b"-> suspect")
        except OSError:
            pass
    return total


def peer_view_bytes(http_port):
    """Median bytes of one peer's status view in a node's /status.json, or None."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/status.json" % http_port,
                                    timeout=5) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError):
        return None
    self_name = doc.get("node")
    views = [len(json.dumps(v, separators=(",", ":"))) for k, v in doc.get("nodes", {}).items()
             if k != self_name and isinstance(v, dict) and "error" not in v]
    return statistics.median(views) if views else None


def run_size(binary, n, idle, logdir, timeout, sets=()):
    nodes = []
    pp = ports(n)
    for i in range(n):
        name = "m%03d" % (i + 1)
        port, http = pp[i]
        argv = [binary, "--name", name, "--listen", "tcp://127.0.0.1:%d" % port,
                "--threads", "1", "--http", "127.0.0.1:%d" % http, "--insecure"]
        for kv in sets:
            argv += ["--set", kv]
        if i:
            argv += ["--join", "127.0.0.1:%d" % pp[0][0]]
        log = os.path.join(logdir, "%d-%s.err" % (n, name))
        with open(log, "wb") as err:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                 stdin=subprocess.DEVNULL)
        PROCS.append(p)
        nodes.append({"name": name, "proc": p, "http": http, "log": log})
        if i == 0:
            time.sleep(0.3)
    t0 = time.monotonic()
    while not converged(nodes):
        if time.monotonic() - t0 > timeout:
            raise Failed("%d nodes did not converge within %d s" % (n, timeout))
        time.sleep(0.5)
    conv = time.monotonic() - t0
    time.sleep(2.0)   # let the last registries and gossip settle before measuring
    s0 = suspicions(nodes)
    b0 = {x["name"]: wire_bytes_out(x["http"]) for x in nodes}
    bt0 = time.monotonic()
    start = {x["name"]: cpu_ticks(x["proc"].pid) for x in nodes}
    w0 = time.monotonic()
    time.sleep(idle)
    window = time.monotonic() - w0
    rows = []
    for x in nodes:
        pid = x["proc"].pid
        st = status_fields(pid)
        rows.append({"name": x["name"],
                     "cpu_pct": 100.0 * (cpu_ticks(pid) - start[x["name"]]) / CLK_TCK / window,
                     "fds": len(os.listdir("/proc/%d/fd" % pid)),
                     "rss_mb": st["VmRSS"] / 1024.0, "threads": st["Threads"]})
    for x, row in zip(nodes, rows):
        b1 = wire_bytes_out(x["http"])
        row["out_kbs"] = ((b1 - b0[x["name"]]) / 1024.0 / (time.monotonic() - bt0)
                          if b1 is not None and b0[x["name"]] is not None else None)
    suspected = suspicions(nodes) - s0
    view_bytes = peer_view_bytes(nodes[0]["http"])
    try:
        still = converged(nodes)
    except Failed as e:
        still = False
        print("N=%d: after the window: %s" % (n, e), file=sys.stderr)
    kill_all()
    return {"n": n, "converged_s": round(conv, 1), "window_s": round(window, 1),
            "still_converged": still, "suspicions": suspected, "peer_view_bytes": view_bytes,
            "nodes": rows}


FIGURES = [("cpu_pct", "CPU % of a core", "%.2f"), ("fds", "open fds", "%.0f"),
           ("rss_mb", "RSS MB", "%.1f"), ("threads", "threads", "%.0f"),
           ("out_kbs", "sent KiB/s", "%.1f")]


def summary(res):
    out = {}
    for key, _, _ in FIGURES:
        v = [r[key] for r in res["nodes"] if r.get(key) is not None]
        out[key] = (statistics.median(v), min(v), max(v)) if v else None
    return out


def fit(xs, ys):
    """Least squares y = a + b x, and y = c x^k on the positive values; returns both."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    k = c = None
    if all(y > 0 for y in ys) and len(xs) > 1:
        lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
        mlx, mly = statistics.mean(lx), statistics.mean(ly)
        k = (sum((x - mlx) * (y - mly) for x, y in zip(lx, ly)) /
             sum((x - mlx) ** 2 for x in lx))
        c = math.exp(mly - k * mlx)
    return a, b, k, c


def report(results, machine):
    lines = ["machine: %s" % machine, ""]
    head = "| N | converged | " + " | ".join("%s median (range)" % t for _, t, _ in FIGURES) + " |"
    lines += [head, "|" + "---|" * (2 + len(FIGURES))]
    sums = {}
    for res in results:
        if "error" in res:
            lines.append("| %d | not measured: %s |%s" % (res["n"], res["error"],
                                                          " |" * len(FIGURES)))
            continue
        s = summary(res)
        sums[res["n"]] = s
        cells = []
        for key, _, fmt in FIGURES:
            if s[key] is None:
                cells.append("-")
                continue
            med, lo, hi = s[key]
            cells.append((fmt + " (" + fmt + "-" + fmt + ")") % (med, lo, hi))
        lines.append("| %d | %.1f s%s | %s |" % (res["n"], res["converged_s"],
                                                  "" if res["still_converged"] else " (lost!)",
                                                  " | ".join(cells)))
    lines += ["", "Per-node growth with N (least squares over the medians), and the "
              "projection to 1,000 nodes by each fit:", ""]
    lines += ["| figure | linear a + b*N | power c*N^k | per node at 1,000: linear / power "
              "| whole cluster at 1,000: linear / power |", "|---|---|---|---|---|"]
    ns = sorted(sums)
    fits = {}
    if len(ns) < 2:
        return "\n".join(lines[:-5] + ["", "(fewer than two sizes measured: no fit)"]), fits
    total_fmt = {"cpu_pct": lambda v: "%.0f cores" % (v / 100.0),
                 "fds": lambda v: "%.2g fds" % v,
                 "rss_mb": lambda v: "%.0f GB" % (v / 1024.0),
                 "threads": lambda v: "%.0f threads" % v,
                 "out_kbs": lambda v: "%.0f MiB/s" % (v / 1024.0)}
    for key, title, fmt in FIGURES:
        if any(sums[n][key] is None for n in ns):
            continue
        ys = [sums[n][key][0] for n in ns]
        a, b, k, c = fit(ns, ys)
        lin = a + b * 1000
        pw = c * 1000 ** k if k is not None else None
        fits[key] = {"a": a, "b": b, "k": k, "c": c, "at_1000_linear": lin,
                     "at_1000_power": pw}
        lines.append("| %s | %.4g + %.4g*N | %s | %s / %s | %s / %s |" % (
            title, a, b, ("%.3g*N^%.2f" % (c, k)) if k is not None else "-", fmt % lin,
            (fmt % pw) if pw is not None else "-", total_fmt[key](lin * 1000),
            total_fmt[key](pw * 1000) if pw is not None else "-"))
    return "\n".join(lines), fits


def machine_line():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        mem = 0
    return "%s, %d cores, %d MB, Linux %s, load average %s" % (
        cpu, os.cpu_count(), mem, os.uname().release,
        " ".join("%.2f" % x for x in os.getloadavg()))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "stage-node"))
    ap.add_argument("--sizes", default="10,30,50")
    ap.add_argument("--idle", type=float, default=20.0, help="idle window, seconds")
    ap.add_argument("--timeout", type=int, default=60, help="convergence bound, seconds")
    ap.add_argument("--json", help="also write every per-node row to this file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to every node (repeatable)")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit("no binary at %s (build it: make build)" % args.binary)
    signal.signal(signal.SIGTERM, lambda *_: (kill_all(), sys.exit(1)))
    logdir = tempfile.mkdtemp(prefix="sn-membership-cost-")
    logdir_keep = False
    sizes = [int(x) for x in args.sizes.split(",")]
    results = []
    t0 = time.monotonic()
    machine = machine_line()
    try:
        for n in sizes:
            try:
                res = run_size(args.binary, n, args.idle, logdir, args.timeout, args.set)
            except Failed as e:
                kill_all()
                results.append({"n": n, "error": str(e)})
                print("N=%d: not measured: %s (logs in %s)" % (n, e, logdir), file=sys.stderr)
                logdir_keep = True
                continue
            results.append(res)
            s = summary(res)
            print("N=%d: converged in %.1f s; median CPU %.2f%%, fds %d, RSS %.1f MB, "
                  "threads %d; %d suspicions logged in the window; a peer's status view "
                  "%s bytes" % (n, res["converged_s"], s["cpu_pct"][0], s["fds"][0],
                                s["rss_mb"][0], s["threads"][0], res["suspicions"],
                                res["peer_view_bytes"]), file=sys.stderr, flush=True)
    finally:
        kill_all()
    text, fits = report(results, machine)
    print("%s\n\nbinary: %s%s; idle window %.0f s per size; total run %.0f s; %s\n" % (
        text, os.path.relpath(args.binary, ROOT),
        "".join(" --set " + kv for kv in args.set), args.idle, time.monotonic() - t0,
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": results, "fits": fits}, f, indent=1)
    if not logdir_keep:
        shutil.rmtree(logdir, ignore_errors=True)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
