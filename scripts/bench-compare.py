#!/usr/bin/env python3
"""Compares every benchmark figure of this tree against a build of another revision, in the
same run: both builds' bench_* programs run alternately (base, head, base, head, ...), RUNS
times each, and each row's figure is compared median to median. A row more than 10% worse
is flagged. Writes docs/bench-compare.md.

usage: scripts/bench-compare.py [BASE_REV] [RUNS]   (default: HEAD~1, 3)"""
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIGHER = ("/s",)  # units of rates: higher is better; every other unit is a cost


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, **kw)


def build(src, out):
    sh("cmake", "-S", src, "-B", out, "-DCMAKE_BUILD_TYPE=Release",
       "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG", "-DSN_TESTS=OFF", "-DSN_BENCH=ON",
       stdout=subprocess.DEVNULL)
    sh("cmake", "--build", out, "-j", str(os.cpu_count() or 2), stdout=subprocess.DEVNULL)


def norm(name):
    """A row's name without what later builds added to it (the baseline in parentheses, the
    thread count, "median of N runs", a sentence of explanation), so rows renamed since the
    base still meet."""
    name = name.lower()
    for _ in range(2):  # one level of nesting
        name = re.sub(r"\([^()]*\)", "", name)
    name = re.sub(r"\s+,", ",", re.sub(r"\s+", " ", name)).strip()
    name = re.split(r"\.\s", name)[0]  # a sentence after the name
    tail = r",\s*(\d+ threads?|\d+ workers?|1 worker thread|median of \d+[^,]*|cpu( ns)?( per op)?|absolute)$"
    while re.search(tail, name):
        name = re.sub(tail, "", name).strip()
    return name.strip(" ,")


def rows(binary, cwd):
    """Runs one bench program in cwd (its own tree: preload/ and scripts are read from
    there); returns {(area, name): (figure, unit)}, CPU-seconds and the exit status. A
    figure is "N unit" or "N (lo-hi) unit". Two rows whose names normalise alike keep
    their full names (neither hides the other)."""
    t0 = os.times()
    proc = subprocess.run([binary], capture_output=True, text=True, cwd=cwd)
    t1 = os.times()
    parsed = []
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7:
            continue
        m = re.match(r"^([-+0-9.eE]+)\s*(?:\([^)]*\)\s*)?(\S*)", cells[2])
        if m:
            parsed.append((cells[0], cells[1], float(m.group(1)), m.group(2).rstrip(",;")))
    count = {}
    for area, name, _, _ in parsed:
        count[(area, norm(name))] = count.get((area, norm(name)), 0) + 1
    got = {}
    for area, name, v, unit in parsed:
        key = (area, norm(name)) if count[(area, norm(name))] == 1 else (area, name)
        got[key] = (v, unit)
    cpu = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
    return got, cpu, proc.returncode


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rev = sh("git", "-C", ROOT, "rev-parse", "--short", base, capture_output=True).stdout.strip()
    head = sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD", capture_output=True).stdout.strip()
    src = os.path.join(ROOT, "build", "compare-src")
    if os.path.exists(src):
        sh("git", "-C", ROOT, "worktree", "remove", "--force", src)
    sh("git", "-C", ROOT, "worktree", "add", "--detach", src, rev, stdout=subprocess.DEVNULL)
    build(src, os.path.join(ROOT, "build", "compare-base"))
    build(ROOT, os.path.join(ROOT, "build", "compare-head"))
    names = sorted(f for f in os.listdir(os.path.join(ROOT, "build", "compare-head"))
                   if f.startswith("bench_") and
                   os.path.exists(os.path.join(ROOT, "build", "compare-base", f)))
    figs = {}  # (area, name) -> {"base": [...], "head": [...], "unit": u}
    cpu = {"base": 0.0, "head": 0.0}
    silent = set()  # programs that failed (no row, or a non-zero exit), named in the output
    for prog in names:
        for r in range(runs):
            for side in ("base", "head"):
                print(f"run {r + 1}/{runs} {side} {prog}", file=sys.stderr)
                got, c, rc = rows(os.path.join(ROOT, "build", f"compare-{side}", prog),
                                  src if side == "base" else ROOT)
                if not got or rc != 0:
                    silent.add(f"{prog} ({side})")
                cpu[side] += c
                for key, (v, unit) in got.items():
                    e = figs.setdefault(key, {"base": [], "head": [], "units": set()})
                    e["units"].add(unit)
                    e[side].append(v)
    sh("git", "-C", ROOT, "worktree", "remove", "--force", src)
    worse = 0
    lines = []
    dropped = []  # rows not compared, with the reason
    for (area, name), e in sorted(figs.items()):
        if len(e["base"]) < runs or len(e["head"]) < runs:
            dropped.append(f"{area}: {name} (not in every run of both builds)")
            continue
        if len(e["units"]) != 1:
            dropped.append(f"{area}: {name} (units differ: {', '.join(sorted(e['units']))})")
            continue
        unit = next(iter(e["units"]))
        b, h = statistics.median(e["base"]), statistics.median(e["head"])
        if b <= 0:
            dropped.append(f"{area}: {name} (base figure {b:g})")
            continue
        higher = unit.endswith(HIGHER)
        change = (h / b) if higher else (b / h if h > 0 else 0)  # > 1: better
        flag = change < 0.90
        worse += flag
        rng = lambda v: f"{min(v):.4g}-{max(v):.4g}"
        lines.append(f"| {area} | {name} | {b:.4g} ({rng(e['base'])}) | {h:.4g} ({rng(e['head'])}) "
                     f"{unit} | {h / b:.2f}x | {'**worse >10%**' if flag else 'ok'} |")
    cpuinfo = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    with open(os.path.join(ROOT, "docs", "bench-compare.md"), "w") as f:
        f.write("# Benchmarks against the previous build\n\n")
        f.write("Written by `scripts/bench-compare.py`; do not edit by hand. Both builds ran "
                "alternately in one run; each cell is the median (range) of "
                f"{runs} runs.\n\n")
        f.write(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        f.write(f"- machine: {model.group(1) if model else 'unknown'}, {os.cpu_count()} cores\n")
        f.write(f"- base: {rev}; head: {head}\n")
        f.write(f"- CPU-seconds of all bench programs: base {cpu['base']:.1f} s, "
                f"head {cpu['head']:.1f} s\n\n")
        f.write("| area | benchmark | base | head | head/base | verdict |\n|---|---|---|---|---|---|\n")
        f.write("\n".join(lines) + "\n")
        f.write(f"\n{worse} rows more than 10% worse.\n")
        if silent:
            f.write("\nPrograms that failed (no row, or a non-zero exit) in some run: "
                    + ", ".join(sorted(silent)) + ".\n")
        if dropped:
            f.write("\nRows not compared:\n\n" + "".join(f"- {d}\n" for d in dropped))
    print(f"wrote docs/bench-compare.md: {worse} rows more than 10% worse", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
