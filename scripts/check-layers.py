#!/usr/bin/env python3
"""The layers stay true: a file includes only headers of its own layer or of layers below it,
Lua headers only where Lua belongs, no include cycle joins more than two modules, and no file
under node/ passes 900 lines. Includes are by file name (every folder is on the include
path), so no two files may share a name. docs/architecture.md describes the layers.

Violations known today are listed in scripts/layers-known.txt, one per line. The check fails
on any violation not in that list, and on any listed line that no longer happens (so the list
can only shrink). Exit status 0 when both hold."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lowest first. A layer may include its own headers and those of the layers before it.
LAYERS = [("base", "node/base"), ("proto", "proto"), ("runtime", "node/runtime"),
          ("cluster", "node/cluster"), ("io", "node/io"), ("broker", "node/broker"),
          ("lua", "node/lua"), ("ops", "node/ops"),
          ("main", "node")]
LUA_ALLOWED = {"proto", "lua", "main"}  # proto's snapshot codec is about Lua values
MAX_LINES = 900
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def files():
    for name, folder in LAYERS:
        d = os.path.join(ROOT, folder)
        for f in sorted(os.listdir(d)):
            if f.endswith((".c", ".h")):
                yield name, os.path.join(folder, f)


def main():
    rank = {name: i for i, (name, _) in enumerate(LAYERS)}
    layer_of = {}  # header basename -> layer
    found = set()
    seen = {}  # basename -> path: every folder is on the include path, so names are unique
    for name, path in files():
        base = os.path.basename(path)
        if base in seen:
            found.add(f"name {path}: same file name as {seen[base]}")
        seen[base] = path
        if path.endswith(".h"):
            layer_of[base] = name
    edges = {}  # module -> modules it includes
    for name, path in files():
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        mod = os.path.splitext(os.path.basename(path))[0]
        if path.startswith("node/") and text.count("\n") > MAX_LINES:
            found.add(f"size {path}: {text.count(chr(10))} lines (at most {MAX_LINES})")
        for kind, inc in INCLUDE.findall(text):
            if kind == "<":
                if inc in ("lua.h", "lauxlib.h", "lualib.h") and name not in LUA_ALLOWED:
                    found.add(f"lua {path}: includes <{inc}> ({name} holds no Lua)")
                continue
            target = layer_of.get(inc)
            if target is None:
                continue
            if rank[target] > rank[name]:
                found.add(f"layer {path}: includes {inc} ({name} may not include {target})")
            other = os.path.splitext(inc)[0]
            if other != mod:
                edges.setdefault(mod, set()).add(other)
    for cycle in cycles(edges):
        if len(cycle) > 2:
            found.add("cycle " + " ".join(sorted(cycle)))
    known_path = os.path.join(ROOT, "scripts", "layers-known.txt")
    known = set()
    if os.path.exists(known_path):
        for line in open(known_path, encoding="utf-8"):
            line = line.strip()
            if line and not line.startswith("#"):
                known.add(line)
    new = sorted(found - known)
    gone = sorted(known - found)
    for v in new:
        print("NEW   " + v)
    for v in gone:
        print("FIXED " + v + "  (remove it from scripts/layers-known.txt)")
    still = len(found & known)
    print(f"layers: {len(found)} violations ({still} known, {len(new)} new), "
          f"{len(gone)} listed but gone")
    return 1 if new or gone else 0


def cycles(edges):
    """Strongly connected components of the include graph (Tarjan), as sets of modules."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
