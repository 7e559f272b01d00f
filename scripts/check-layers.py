#!/usr/bin/env python3
"""The layers stay true: a file includes only headers of its own layer or of layers below it,
Lua headers only where Lua belongs, no include cycle joins more than two modules, and no file
under node/ passes 900 lines. Includes are by file name (every folder is on the include
path), so no two files may share a name. docs/architecture.md describes the layers.

Violations known today are listed in scripts/layers-known.txt, one per line. The check fails
on any violation not in that list, and on any listed line that no longer happens (so the list
can only shrink). Exit status 0 when both hold.

--self-test runs the check on small made-up trees in a temporary folder, each holding one
kind of violation (make test runs it), and fails when one is missed or a clean file is
flagged."""
import os
import re
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lowest first. A layer may include its own headers and those of the layers before it.
LAYERS = [("base", "node/base"), ("proto", "proto"), ("runtime", "node/runtime"),
          ("cluster", "node/cluster"), ("io", "node/io"), ("broker", "node/broker"),
          ("lua", "node/lua"), ("ops", "node/ops"),
          ("main", "node")]
LUA_ALLOWED = {"proto", "lua", "main"}  # proto's snapshot codec is about Lua values
LUA_HEADERS = {"lua.h", "lauxlib.h", "lualib.h", "luaconf.h", "lua.hpp"}
MAX_LINES = 900
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def files(root):
    for name, folder in LAYERS:
        d = os.path.join(root, folder)
        if not os.path.isdir(d):
            if root == ROOT:  # a layer's folder renamed away is not a layer checked
                raise SystemExit("check-layers: %s is missing (LAYERS names it)" % folder)
            continue  # the self-test's small trees hold only some layers
        for f in sorted(os.listdir(d)):
            if f.endswith((".c", ".h")):
                yield name, os.path.join(folder, f)


def violations(root):
    """The set of violation lines of the tree at root."""
    rank = {name: i for i, (name, _) in enumerate(LAYERS)}
    layer_of = {}  # header basename -> layer
    found = set()
    seen = {}  # basename -> path: every folder is on the include path, so names are unique
    for name, path in files(root):
        base = os.path.basename(path)
        if base in seen:
            found.add(f"name {path}: same file name as {seen[base]}")
        seen[base] = path
        if path.endswith(".h"):
            layer_of[base] = name
    edges = {}  # module -> modules it includes
    for name, path in files(root):
        text = open(os.path.join(root, path), encoding="utf-8").read()
        mod = os.path.splitext(os.path.basename(path))[0]
        if path.startswith("node/") and text.count("\n") > MAX_LINES:
            found.add(f"size {path}: {text.count(chr(10))} lines (at most {MAX_LINES})")
        for kind, inc in INCLUDE.findall(text):
            # Headers are known by file name: "lua.h", <lua5.3/lua.h> and "../lua/lua_x.h"
            # name lua.h and lua_x.h, whichever form or folder the include spells.
            base = os.path.basename(inc)
            shown = f"<{inc}>" if kind == "<" else f'"{inc}"'
            if base in LUA_HEADERS:
                if name not in LUA_ALLOWED:
                    found.add(f"lua {path}: includes {shown} ({name} holds no Lua)")
                continue
            if kind == "<":
                continue
            target = layer_of.get(base)
            if target is None:
                continue
            if rank[target] > rank[name]:
                found.add(f"layer {path}: includes {inc} ({name} may not include {target})")
            other = os.path.splitext(base)[0]
            if other != mod:
                edges.setdefault(mod, set()).add(other)
    for cycle in cycles(edges):
        if len(cycle) > 2:
            found.add("cycle " + " ".join(sorted(cycle)))
    return found


def main():
    found = violations(ROOT)
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


# The self-test's trees: files (path -> text) and the violations the check must report.
SELF_TESTS = [
    ("clean tree", {
        "node/base/sn_a.h": "", "node/base/sn_a.c": '#include "sn_a.h"\n#include <stdio.h>\n',
        "node/runtime/sn_r.c": '#include "sn_a.h"\n#include "../base/sn_a.h"\n',
        "proto/sn_p.c": '#include "lua.h"\n#include <lauxlib.h>\n',
        "node/lua/lua_x.c": '#include <lua.h>\n#include "lualib.h"\n#include "sn_r.h"\n',
        "node/runtime/sn_r.h": ""}, set()),
    ("Lua headers in the core, in every spelling", {
        "node/runtime/sn_r.c": '#include "lua.h"\n',
        "node/runtime/sn_s.c": '#include <lauxlib.h>\n',
        "node/cluster/sn_c.c": '#  include "lualib.h"\n',
        "node/base/sn_b.c": '#include "luaconf.h"\n',
        "node/ops/sn_o.c": '#include <lua5.3/lua.h>\n'}, {
        'lua node/runtime/sn_r.c: includes "lua.h" (runtime holds no Lua)',
        'lua node/runtime/sn_s.c: includes <lauxlib.h> (runtime holds no Lua)',
        'lua node/cluster/sn_c.c: includes "lualib.h" (cluster holds no Lua)',
        'lua node/base/sn_b.c: includes "luaconf.h" (base holds no Lua)',
        'lua node/ops/sn_o.c: includes <lua5.3/lua.h> (ops holds no Lua)'}),
    ("a higher layer's header, with and without a path", {
        "node/lua/lua_x.h": "", "node/cluster/sn_c.h": "",
        "node/runtime/sn_r.c": '#include "../lua/lua_x.h"\n',
        "node/base/sn_b.c": '#include "sn_c.h"\n'}, {
        "layer node/runtime/sn_r.c: includes ../lua/lua_x.h (runtime may not include lua)",
        "layer node/base/sn_b.c: includes sn_c.h (base may not include cluster)"}),
    ("a cycle of three modules through paths", {
        "node/runtime/sn_a.h": '#include "../runtime/sn_b.h"\n',
        "node/runtime/sn_b.h": '#include "sn_c.h"\n',
        "node/runtime/sn_c.h": '#include "./sn_a.h"\n'}, {"cycle sn_a sn_b sn_c"}),
    ("a long file, a shared name", {
        "node/ops/sn_long.c": "\n" * (MAX_LINES + 1),
        "node/runtime/sn_d.c": "", "node/ops/sn_d.c": ""}, {
        f"size node/ops/sn_long.c: {MAX_LINES + 1} lines (at most {MAX_LINES})",
        "name node/ops/sn_d.c: same file name as node/runtime/sn_d.c"}),
]


def self_test():
    failed = 0
    for title, tree, want in SELF_TESTS:
        root = tempfile.mkdtemp(prefix="check-layers-")
        try:
            for path, text in tree.items():
                os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
                with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                    f.write(text)
            got = violations(root)
        finally:
            shutil.rmtree(root)
        if got == want:
            print(f"PASS  {title}")
            continue
        failed += 1
        print(f"FAIL  {title}")
        for v in sorted(want - got):
            print(f"  missed:  {v}")
        for v in sorted(got - want):
            print(f"  extra:   {v}")
    print(f"layers self-test: {len(SELF_TESTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main())
