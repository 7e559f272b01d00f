#!/usr/bin/env bash
# Offline checks of the deployment files: deploy/Dockerfile, docker-compose.yml,
# deploy/prometheus.yml, deploy/grafana/stage-node.json, deploy/k8s/*.yaml.
# Nothing here needs Docker, Kubernetes or the network, and nothing is installed.
#
# Needs the Debian 12 packages: docker-compose prometheus python3-yaml shellcheck
# (plus bash, coreutils, grep, sed, binutils' readelf and dpkg, which Debian has).
# Optional: kubectl (for a `kubectl kustomize` render); skipped when absent.
#
# Usage: scripts/deploy-check.sh      exit status 0 when every check passed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3            # Debian's python3, where python3-yaml lives
WORK=$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")
export WORK
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0 failed=0 skipped=0
failures=()

# check "what it checks" FUNCTION: runs FUNCTION, prints PASS/FAIL with its output on failure.
# A function that prints "SKIP: reason" on fd 3 and returns 0 counts as skipped.
check() {
    local what=$1 fn=$2 out rc
    printf '== %s\n' "$what"
    : >"$WORK/skip"
    out=$("$fn" 3>"$WORK/skip" 2>&1)
    rc=$?
    if [[ $rc -eq 0 && -s "$WORK/skip" ]]; then
        skipped=$((skipped + 1))
        printf '   SKIP  %s\n' "$(cat "$WORK/skip")"
    elif [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        [[ -n "$out" ]] && printf '%s\n' "$out" | sed 's/^/   /'
        printf '   PASS\n'
    else
        failed=$((failed + 1))
        failures+=("$what")
        [[ -n "$out" ]] && printf '%s\n' "$out" | sed 's/^/   | /'
        printf '   FAIL  %s (exit %d)\n' "$what" "$rc"
    fi
}

CONTRACT_METRICS=(
    stage_messages_in_total stage_messages_out_total stage_messages_dropped_total
    stage_mailbox_depth stage_handler_seconds stage_errors_total stage_kills_total
    stage_actors stage_workers stage_jobs_total stage_jobs_running stage_peers
    stage_wire_bytes_total stage_wire_messages_total stage_lua_memory_bytes
    stage_function_cache_total stage_node_info stage_uptime_seconds
)
export CONTRACT="${CONTRACT_METRICS[*]}"

# ---------------------------------------------------------------- tools
c_tools() {
    local bad=0
    need() {   # need COMMAND DEBIAN-PACKAGE
        if command -v "$1" >/dev/null 2>&1; then echo "found $1 ($(command -v "$1"))"
        else echo "missing $1: apt-get install $2"; bad=1; fi
    }
    need docker-compose docker-compose
    need promtool prometheus
    need shellcheck shellcheck
    need readelf binutils
    if [[ -x $PY ]] && $PY -c 'import yaml' 2>/dev/null; then echo "found $PY with PyYAML"
    else echo "missing $PY with the yaml module: apt-get install python3-yaml"; bad=1; fi
    return $bad
}

# ---------------------------------------------------------------- no --insecure
# Every shipped deployment file runs the cluster port with CURVE: none may pass --insecure
# (a comment that shows it is a recipe too), nor set insecure in a config file. Also no
# file of the repository (tests aside) may hold a secret key: they come from
# scripts/cluster-keys.sh at deploy time.
shipped_files() { printf '%s\n' docker-compose.yml; find deploy -type f | LC_ALL=C sort; }
scan_insecure() {   # scan_insecure DIR: the offending lines of the shipped files under DIR
    local f
    while read -r f; do
        [[ -f "$1/$f" ]] && grep -HnE -- '--insecure\b|\binsecure[[:space:]]*=[[:space:]]*(true|1)\b' "$1/$f" \
            | sed "s|^$1/||"
    done < <(shipped_files)
}
c_no_insecure() {
    local hits
    # The scan itself: a copy with --insecure added to the seed and to the k8s entrypoint
    # must be caught, else this check could not fail.
    mkdir -p "$WORK/insecure-copy"
    cp -r docker-compose.yml deploy "$WORK/insecure-copy/"
    sed -i 's|^      - --curve-secret$|      - --insecure\n&|' "$WORK/insecure-copy/docker-compose.yml"
    sed -i 's|--listen tcp://0.0.0.0:7400 \\|--listen tcp://0.0.0.0:7400 --insecure \\|' \
        "$WORK/insecure-copy/deploy/k8s/statefulset.yaml"
    hits=$(scan_insecure "$WORK/insecure-copy" | cut -d: -f1 | sort -u | tr '\n' ' ')
    if [[ "$hits" != *"deploy/k8s/statefulset.yaml "* || "$hits" != *"docker-compose.yml "* ]]; then
        echo "the scan missed an injected --insecure (found in: ${hits:-nothing})"; return 1
    fi
    echo "scan catches an injected --insecure in: $hits"
    hits=$(scan_insecure .)
    if [[ -n "$hits" ]]; then
        echo "--insecure in a shipped file:"; echo "$hits"; return 1
    fi
    echo "no --insecure in $(shipped_files | wc -l) shipped files: $(shipped_files | tr '\n' ' ')"
    # The shipped files, and in a git checkout every tracked file but tests' fixtures.
    local where="the shipped files" git=0
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git=1; where="the shipped and tracked files (tests/ aside)"
    fi
    {
        shipped_files
        [[ $git == 1 ]] && git ls-files -- . ':!tests'
    } | sort -u | tr '\n' '\0' >"$WORK/scan-files"
    hits=$(xargs -0 grep -lE 'secret-key = [][0-9A-Za-z.:+=^!/*?&<>(){}@%$#-]{40}([[:space:]]|$)' \
           <"$WORK/scan-files" 2>/dev/null)
    if [[ -n "$hits" ]]; then echo "a secret key is committed in: $hits"; return 1; fi
    echo "no secret key in $where"
}

# ---------------------------------------------------------------- compose
c_compose_config() {
    docker-compose -f docker-compose.yml config -q
}

c_compose_shape() {
    $PY - "$WORK/compose.json" <<'PYEOF'
import json, os, re, sys, yaml
d = yaml.safe_load(open("docker-compose.yml"))   # PyYAML resolves the <<: merge keys
bad = []
def need(cond, msg):
    if not cond: bad.append(msg)
v = str(d.get("version", ""))
need(v.startswith("3."), f"version should be 3.x for docker-compose 1.29 (got {v!r})")
svcs = d.get("services", {})
NODES = ("seed", "node2", "node3")
for s in ("keys",) + NODES + ("prometheus",):
    need(s in svcs, f"service {s} missing")
if bad:
    print("\n".join(bad)); sys.exit(1)
named_volumes = set((d.get("volumes") or {}).keys())
def mounts(svc):
    """(source, target, read_only) of each volume of a service (short syntax)."""
    out = []
    for m in svcs[svc].get("volumes", []) or []:
        parts = str(m).split(":")
        out.append((parts[0], parts[1] if len(parts) > 1 else parts[0],
                    len(parts) > 2 and "ro" in parts[2].split(",")))
    return out
def under(path, svc):
    """The mount of svc holding path, and path relative to it."""
    best = None
    for src, tgt, ro in mounts(svc):
        if path.startswith(tgt.rstrip("/") + "/") and (best is None or len(tgt) > len(best[1])):
            best = (src, tgt, ro)
    return best, (os.path.relpath(path, best[1]) if best else None)
# Every published port is on loopback only: HTTP is not published on all interfaces.
for s, c in svcs.items():
    for p in c.get("ports", []) or []:
        need(str(p).startswith("127.0.0.1:"), f"{s}: port {p} is published on every interface "
             "(use 127.0.0.1:HOST:CONTAINER)")
want_port = {"seed": "127.0.0.1:8080:8080", "node2": "127.0.0.1:8081:8080",
             "node3": "127.0.0.1:8082:8080"}
image = svcs["seed"].get("image")
names, key_volumes, info = [], {}, {"nodes": {}}
for s in NODES:
    c = svcs[s]
    cmd = c.get("command")
    need(isinstance(cmd, list), f"{s}: command should be a list")
    cmd = [str(a) for a in cmd or []]
    def opt(o):
        return [cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a == o]
    name = opt("--name")
    need(len(name) == 1, f"{s}: exactly one --name")
    names += name
    need(opt("--listen") == ["tcp://0.0.0.0:7400"], f"{s}: --listen tcp://0.0.0.0:7400")
    need("--insecure" not in cmd, f"{s}: --insecure (the cluster port must run with CURVE)")
    sec, allow = opt("--curve-secret"), opt("--curve-allow")
    need(len(sec) == 1, f"{s}: exactly one --curve-secret FILE")
    need(len(allow) == 1, f"{s}: exactly one --curve-allow FILE")
    need(opt("--http") == ["0.0.0.0:8080"], f"{s}: --http 0.0.0.0:8080")
    need(c.get("image") == image, f"{s}: image {c.get('image')} is not {image}")
    deps = c.get("depends_on") or {}
    need(isinstance(deps, dict) and (deps.get("keys") or {}).get("condition")
         == "service_completed_successfully",
         f"{s}: depends_on keys with condition service_completed_successfully")
    node = {"name": (name or [""])[0], "join": opt("--join"), "mounts": mounts(s), "command": cmd}
    for what, files in (("secret", sec), ("allow", allow)):
        if len(files) != 1: continue
        m, rel = under(files[0], s)
        if not m:
            bad.append(f"{s}: {files[0]} is on no volume"); continue
        need(m[0] in named_volumes, f"{s}: {files[0]} is on {m[0]}, not a named volume of this file")
        need(m[2], f"{s}: {m[1]} ({m[0]}) must be mounted read-only")
        node[what] = [m[0], rel]
        if what == "secret":
            key_volumes.setdefault(m[0], []).append(s)
    info["nodes"][s] = node
    if s == "seed":
        need(not opt("--join"), "seed must not --join")
        scripts = [a for a in cmd if a.endswith(".lua")]
        need(len(scripts) == 1 and scripts[0] == cmd[-1], "seed: one SCRIPT.lua, last")
        for sc in scripts:
            need(sc.startswith("scripts/") and os.path.isfile(sc), f"seed: {sc} missing in the repo")
    else:
        need(opt("--join") == ["seed:7400"], f"{s}: --join seed:7400")
        need("seed" in deps, f"{s}: depends_on seed")
    need([str(p) for p in c.get("ports", [])] == [want_port[s]], f"{s}: ports [{want_port[s]}]")
    need(c.get("restart") in ("always", "unless-stopped", "on-failure"), f"{s}: restart policy")
    hc = " ".join(c.get("healthcheck", {}).get("test", []))
    need("/status.json" in hc, f"{s}: healthcheck must probe /status.json")
    b = c.get("build", {})
    need(b.get("context") == "." and b.get("dockerfile") == "deploy/Dockerfile",
         f"{s}: build context . with deploy/Dockerfile")
    print(f"{s}: {' '.join(cmd)}")
need(len(set(names)) == 3, f"node names must be distinct: {names}")
# A node's secret key is on a volume no other node mounts.
for vol, users in key_volumes.items():
    need(len(users) == 1, f"secret key volume {vol} is shared by {users}")
    for s in NODES:
        if s not in users:
            need(vol not in [m[0] for m in mounts(s)], f"{s} mounts {vol}, the secret key of {users}")
# The keys service: same image, runs scripts/cluster-keys.sh for exactly these nodes, offline,
# once, and mounts every volume a node reads its key or allow list from.
k = svcs["keys"]
need(k.get("image") == image, f"keys: image {k.get('image')} is not the nodes' {image}")
b = k.get("build", {})
need(b.get("context") == "." and b.get("dockerfile") == "deploy/Dockerfile", "keys: build as the nodes")
ep = [str(a) for a in k.get("entrypoint") or []]
need(ep[-1:] == ["/opt/stage/scripts/cluster-keys.sh"], f"keys: entrypoint runs cluster-keys.sh: {ep}")
# The image copies scripts/ to /opt/stage/scripts/ (the Dockerfile check holds it to that).
need(os.path.isfile("scripts/cluster-keys.sh"), "scripts/cluster-keys.sh missing in the repo")
kcmd = [str(a) for a in k.get("command") or []]
need(kcmd[:1] == ["dir"] and len(kcmd) >= 3, f"keys: command dir DIR NAME...: {kcmd}")
need(sorted(kcmd[2:]) == sorted(names), f"keys: names {kcmd[2:]} are not the nodes' {names}")
need(k.get("network_mode") == "none", "keys: network_mode none")
need(str(k.get("restart", "no")) == "no", "keys: restart no (a one-shot)")
need(not k.get("ports"), "keys: no ports")
env = k.get("environment") or {}
if isinstance(env, list): env = dict(e.split("=", 1) for e in env)
owner = str(env.get("SN_KEYS_OWNER", ""))
user = re.findall(r"^USER (\S+)", open("deploy/Dockerfile").read(), re.M)
need(user and owner == user[-1], f"keys: SN_KEYS_OWNER {owner!r} is not the image's USER {user[-1:]}")
kvols = {src for src, _, _ in mounts("keys")}
for s, node in info["nodes"].items():
    for what in ("secret", "allow"):
        if what in node:
            need(node[what][0] in kvols, f"keys does not mount {node[what][0]} ({s}'s {what})")
info["keys"] = {"command": kcmd, "mounts": mounts("keys"), "owner": owner}
print(f"keys: {' '.join(ep + kcmd)} (owner {owner}); volumes {sorted(kvols)}")
p = svcs["prometheus"]
need(str(p.get("image", "")).startswith("prom/prometheus"), "prometheus: image prom/prometheus")
need("127.0.0.1:9090:9090" in [str(x) for x in p.get("ports", [])], "prometheus: ports 127.0.0.1:9090:9090")
vols = [str(x) for x in p.get("volumes", [])]
need(any(x.startswith("./deploy/prometheus.yml:/etc/prometheus/prometheus.yml") for x in vols),
     "prometheus: mounts ./deploy/prometheus.yml")
print("prometheus:", p.get("image"), vols)
json.dump(info, open(sys.argv[1], "w"))
if bad:
    print("\n".join(bad)); sys.exit(1)
PYEOF
}

# The keygen the key checks use: a built stage-node (real keys) or, without one, a stand-in
# writing random keys in keygen's file format (the scripts treat keys as opaque text).
keygen_bin() {
    local b
    for b in "${STAGE_NODE:-}" build/stage-node build/release/stage-node build/dev/stage-node; do
        [[ -n "$b" && -x "$b" ]] || continue
        rm -f "$WORK/keygen-probe" "$WORK/keygen-probe.pub"
        if "$b" keygen "$WORK/keygen-probe" >/dev/null 2>&1; then
            rm -f "$WORK/keygen-probe" "$WORK/keygen-probe.pub"
            echo "$(cd "$(dirname "$b")" && pwd)/$(basename "$b")"; return
        fi
    done
    mkdir -p "$WORK/bin"
    cat >"$WORK/bin/fake-keygen" <<'SHEOF'
#!/bin/sh
# A stand-in for `stage-node keygen FILE` (deploy-check only): random, not a real keypair.
[ "$1" = keygen ] && [ $# -eq 2 ] || exit 2
exec /usr/bin/python3 - "$2" <<'PYEOF'
import os, sys
A = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
def z85(b):
    out = ""
    for i in range(0, len(b), 4):
        v = int.from_bytes(b[i:i + 4], "big")
        out += "".join(A[(v // 85 ** k) % 85] for k in (4, 3, 2, 1, 0))
    return out
pub, sec = z85(os.urandom(32)), z85(os.urandom(32))
path = sys.argv[1]
for p, mode, text in ((path, 0o600, "# stage-node CurveZMQ keypair: keep this file secret (mode 0600)\n"
                       f"public-key = {pub}\nsecret-key = {sec}\n"), (path + ".pub", 0o644, pub + "\n")):
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.fchmod(fd, mode); os.write(fd, text.encode()); os.close(fd)
PYEOF
SHEOF
    chmod +x "$WORK/bin/fake-keygen"
    echo "$WORK/bin/fake-keygen"
}

# Run the compose `keys` service's command with scripts/cluster-keys.sh against a directory
# per named volume, then check what each node would read through its own mounts: its secret
# key, and an allow list naming it with that key and naming the seed it joins. A second run
# must change nothing (idempotent), and each secret key must belong to the node's user.
c_compose_keys() {
    [[ -s "$WORK/compose.json" ]] || { echo "no compose summary (the compose check failed)"; return 1; }
    local kg
    kg=$(keygen_bin)
    echo "keygen: $kg"
    STAGE_NODE=$kg $PY - "$WORK" <<'PYEOF'
import hashlib, json, os, re, subprocess, sys
work = sys.argv[1]
info = json.load(open(work + "/compose.json"))
vols, root = work + "/volumes", work + "/keys-root"
for src, tgt, _ in info["keys"]["mounts"]:
    os.makedirs(f"{vols}/{src}", exist_ok=True)
    os.makedirs(os.path.dirname(root + tgt), exist_ok=True)
    os.symlink(f"{vols}/{src}", root + tgt)
args = [root + a if a.startswith("/") else a for a in info["keys"]["command"]]
env = dict(os.environ)
owner = info["keys"]["owner"]
if os.geteuid() == 0: env["SN_KEYS_OWNER"] = owner
else:
    env.pop("SN_KEYS_OWNER", None)
    print(f"not root: the chown to {owner} is not exercised")
def run():
    r = subprocess.run(["/bin/sh", "scripts/cluster-keys.sh"] + args, env=env,
                       capture_output=True, text=True)
    print("\n".join("  " + l for l in r.stderr.splitlines()))
    if r.returncode != 0: print(f"cluster-keys.sh exited {r.returncode}"); sys.exit(1)
def snapshot():
    out = {}
    for d, _, fs in os.walk(vols):
        for f in fs:
            p = os.path.join(d, f); st = os.stat(p)
            out[p] = (hashlib.sha256(open(p, "rb").read()).hexdigest(), st.st_mtime_ns, st.st_mode, st.st_uid)
    return out
run(); first = snapshot(); run(); second = snapshot()
bad = []
if first != second: bad.append("a second run of the keys service changed files: not idempotent")
z85 = r"[0-9A-Za-z.:+=^!/*?&<>()\[\]{}@%$#-]{40}"
def resolve(node, what):
    src, rel = node[what]
    return os.path.join(vols, src, rel)
for s, node in info["nodes"].items():
    sec, allow = resolve(node, "secret"), resolve(node, "allow")
    if not os.path.isfile(sec): bad.append(f"{s}: {node['secret']} not made by the keys service"); continue
    if not os.path.isfile(allow): bad.append(f"{s}: {node['allow']} not made by the keys service"); continue
    st = os.stat(sec)
    if st.st_mode & 0o077: bad.append(f"{s}: secret key mode {oct(st.st_mode & 0o777)} (group/other access)")
    if os.geteuid() == 0 and f"{st.st_uid}:{st.st_gid}" != owner:
        bad.append(f"{s}: secret key owned by {st.st_uid}:{st.st_gid}, not {owner}")
    m = re.search(rf"^public-key = ({z85})$", open(sec).read(), re.M)
    if not m: bad.append(f"{s}: {sec} has no public-key line"); continue
    entries = {}
    for line in open(allow):
        line = line.strip()
        if not line or line.startswith("#"): continue
        f = line.split()
        if len(f) != 2 or not re.fullmatch(z85, f[0]): bad.append(f"{s}: allow list line {line!r}"); continue
        entries[f[1]] = f[0]
    if entries.get(node["name"]) != m.group(1):
        bad.append(f"{s}: the allow list does not map its key to {node['name']}")
    for j in node["join"]:
        peer = j.split("@", 1)[0] if "@" in j else j.rsplit(":", 1)[0].split(".", 1)[0]
        if peer not in entries: bad.append(f"{s}: --join {j}: {peer} is not in the allow list")
    print(f"{s}: key {m.group(1)[:8]}... mode {oct(st.st_mode & 0o777)}, allow list of "
          f"{len(entries)} ({' '.join(sorted(entries))})")
keys = [open(resolve(n, "secret")).read() for n in info["nodes"].values() if "secret" in n]
if len(set(keys)) != len(keys): bad.append("two nodes share a keypair")
if bad: print("\n".join(bad)); sys.exit(1)
print("second run: no file changed")
PYEOF
}

# A built stage-node that has per-node identity (issue 12: `--join [NAME@]HOST:PORT` in its
# --help), for the live checks; prints nothing and fails when there is none.
identity_bin() {
    local b help
    for b in "${STAGE_NODE:-}" build/stage-node build/release/stage-node build/dev/stage-node; do
        [[ -n "$b" && -x "$b" ]] || continue
        # the whole help first: with pipefail, `--help | grep -q` fails whenever grep exits
        # at its match before the binary has written the rest (SIGPIPE, status 141), which
        # made these checks skip although the binary was there
        help=$("$b" --help 2>&1)
        if [[ $help == *NAME@* ]]; then echo "$b"; return 0; fi
        echo "$b: --help shows no per-node identity (--join [NAME@]HOST:PORT)" >&2
        return 2
    done
    return 1
}

# live_cluster BINARY JSON: runs the nodes of JSON ([{"name", "args"}], the seed first) on
# loopback: --listen, --advertise, --http rewritten to 127.0.0.1 and free ports, each
# `--join HOST:PORT` to `NAME@127.0.0.1:PORT` with NAME the first DNS label of HOST (or
# the NAME of NAME@HOST:PORT), scripts (*.lua) left out. Passes when every node sees every
# node alive in its /status.json within 30 s; shows the nodes' logs otherwise.
live_cluster() {
    $PY - "$WORK" "$1" "$2" <<'PYEOF'
import json, os, signal, socket, subprocess, sys, time, urllib.request
work, binary, nodes = sys.argv[1], os.path.abspath(sys.argv[2]), json.load(open(sys.argv[3]))
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
names = [n["name"] for n in nodes]
cport = {n: free_port() for n in names}
hport = {n: free_port() for n in names}
def argv(node):
    cmd, out, i = node["args"], [binary], 0
    while i < len(cmd):
        a = cmd[i]; v = cmd[i + 1] if i + 1 < len(cmd) else ""
        if a in ("--listen", "--advertise"): out += [a, f"tcp://127.0.0.1:{cport[node['name']]}"]; i += 2
        elif a == "--http": out += [a, f"127.0.0.1:{hport[node['name']]}"]; i += 2
        elif a == "--join":
            peer = v.split("@", 1)[0] if "@" in v else v.rsplit(":", 1)[0].split(".", 1)[0]
            if peer not in cport: print(f"{node['name']}: --join {v}: {peer} is not a node here"); sys.exit(1)
            out += [a, f"{peer}@127.0.0.1:{cport[peer]}"]; i += 2
        elif a.endswith(".lua"): i += 1
        else: out.append(a); i += 1
    return out
def status(name):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{hport[name]}/status.json", timeout=2) as r:
            return json.load(r)
    except Exception:
        return None
procs, ok = {}, False
try:
    for node in nodes:
        n = node["name"]; a = argv(node)
        print(f"{n}: {' '.join(x.replace(work, '$WORK') for x in a[1:])}")
        procs[n] = subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=open(f"{work}/live-{n}.log", "w"))
        deadline = time.time() + 15
        while status(n) is None and procs[n].poll() is None and time.time() < deadline:
            time.sleep(0.2)
        if status(n) is None:
            print(f"{n}: no /status.json (exit status {procs[n].poll()})"); break
    else:
        deadline = time.time() + 30
        while time.time() < deadline and not ok:
            ok = all(v and sorted(m["name"] for m in v.get("members", []) if m.get("state") == "alive")
                     == sorted(names) for v in (status(n) for n in names))
            if not ok: time.sleep(0.5)
        for n in names:
            v = status(n) or {}
            print(f"{n} sees: " + ", ".join(f"{m['name']}={m.get('state')}" for m in v.get("members", [])))
finally:
    for p in procs.values():
        if p.poll() is None: p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try: p.wait(10)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
if not ok:
    print("the nodes did not all see each other alive; their logs:")
    for n in procs:
        print(f"--- {n}"); print("".join(open(f"{work}/live-{n}.log").readlines()[-15:]))
    sys.exit(1)
print(f"one cluster of {len(names)} nodes over CURVE")
PYEOF
}

# The compose nodes' own command lines, run for real (live_cluster) with the files the keys
# service made (c_compose_keys): the built stage-node must load each node's key and the
# allow list, and the three must form one cluster, each joining the seed by the name the
# allow list gives it. Skipped without a binary that has per-node identity.
c_compose_live() {
    local bin
    bin=$(identity_bin)
    case $? in
        1) echo "no built stage-node (make build; deploy-check runs standalone too)" >&3; return 0 ;;
        2) return 1 ;;
    esac
    [[ -d "$WORK/volumes" && -s "$WORK/compose.json" ]] || { echo "no keys (the keys check failed)"; return 1; }
    echo "binary: $bin"
    $PY - "$WORK" <<'PYEOF' || return 1
import json, os, sys
work = sys.argv[1]
info = json.load(open(work + "/compose.json"))
nodes = []
for s, node in sorted(info["nodes"].items(), key=lambda kv: bool(kv[1]["join"])):   # the seed first
    args, cmd, i = [], node["command"], 0
    while i < len(cmd):
        if cmd[i] in ("--curve-secret", "--curve-allow"):
            src, rel = node["secret" if cmd[i] == "--curve-secret" else "allow"]
            args += [cmd[i], os.path.join(work, "volumes", src, rel)]; i += 2
        else: args.append(cmd[i]); i += 1
    nodes.append({"name": node["name"], "args": args})
json.dump(nodes, open(work + "/live-compose.json", "w"))
PYEOF
    live_cluster "$bin" "$WORK/live-compose.json"
}

# The StatefulSet's pods 0..2 as the entrypoint's dry run started them (c_k8s_entrypoint),
# with the throwaway Secret's files, run for real (live_cluster). Skipped as above.
c_k8s_live() {
    local bin ord
    bin=$(identity_bin)
    case $? in
        1) echo "no built stage-node (make build; deploy-check runs standalone too)" >&3; return 0 ;;
        2) return 1 ;;
    esac
    for ord in 0 1 2; do
        [[ -s "$WORK/k8s-args-$ord" ]] || { echo "no entrypoint dry run (that check failed)"; return 1; }
    done
    echo "binary: $bin"
    $PY -c 'import json, sys
nodes = [{"name": f"stage-node-{o}", "args": open(f"{sys.argv[1]}/k8s-args-{o}").read().splitlines()}
         for o in range(3)]
json.dump(nodes, open(sys.argv[1] + "/live-k8s.json", "w"))' "$WORK" || return 1
    live_cluster "$bin" "$WORK/live-k8s.json"
}

# ---------------------------------------------------------------- prometheus
c_promtool() {
    promtool check config deploy/prometheus.yml
}

c_prom_shape() {
    $PY - <<'PYEOF'
import sys, yaml
d = yaml.safe_load(open("deploy/prometheus.yml"))
bad = []
g = d.get("global", {})
if g.get("scrape_interval") != "5s": bad.append("global scrape_interval must be 5s")
jobs = [j for j in d.get("scrape_configs", []) if j.get("metrics_path") == "/metrics"
        and any(t.endswith(":8080") for sc in j.get("static_configs", []) for t in sc.get("targets", []))]
if len(jobs) != 1: bad.append("one scrape job with metrics_path /metrics over the nodes")
else:
    j = jobs[0]
    targets = sorted(t for sc in j.get("static_configs", []) for t in sc.get("targets", []))
    if targets != ["node2:8080", "node3:8080", "seed:8080"]:
        bad.append(f"targets should be seed:8080 node2:8080 node3:8080, got {targets}")
    if not j.get("job_name"): bad.append("job_name (the job label) missing")
    if j.get("scrape_interval", "5s") != "5s": bad.append("job scrape_interval must be 5s")
    print(f"job={j.get('job_name')} metrics_path={j['metrics_path']} targets={targets}")
if bad: print("\n".join(bad)); sys.exit(1)
PYEOF
}

# ---------------------------------------------------------------- grafana
c_grafana() {
    $PY - <<'PYEOF'
import json, os, re, sys
d = json.load(open("deploy/grafana/stage-node.json"))
contract = set(os.environ["CONTRACT"].split())
bad = []
if not 36 <= int(d.get("schemaVersion", 0)) <= 41: bad.append(f"schemaVersion {d.get('schemaVersion')}")
if not any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus"
           for i in d.get("__inputs", [])):
    bad.append("no DS_PROMETHEUS datasource input")
tvars = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
for v in ("instance", "stage"):
    if v not in tvars: bad.append(f"templated variable ${v} missing")
exprs = []   # (where, expression)
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            if "expr" in t: exprs.append((p.get("title", "?"), t["expr"]))
        if p.get("type") != "row" and p.get("targets") is not None and not p.get("targets"):
            bad.append(f"panel {p.get('title')!r} has no query")
        if p.get("type") != "row":
            ds = p.get("datasource", {})
            if ds.get("uid") != "${DS_PROMETHEUS}": bad.append(f"panel {p.get('title')!r}: datasource")
        walk(p.get("panels", []))
walk(d.get("panels", []))
for name, v in tvars.items():
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    exprs.append((f"variable ${name}", q))
used = set()
for where, e in exprs:
    toks = set(re.findall(r"\bstage_[a-z_]+", e))
    if not toks: bad.append(f"{where}: no stage_* metric in {e!r}")
    for t in toks:
        base = re.sub(r"_(bucket|sum|count)$", "", t)
        if base not in contract:
            bad.append(f"{where}: {t} is not a contract metric")
        else:
            used.add(base)
    if "stage_handler_seconds_bucket" in e and "histogram_quantile" not in e:
        bad.append(f"{where}: bucket used without histogram_quantile")
missing = sorted(contract - used)
print(f"{len(exprs)} expressions in {len(d.get('panels', []))} panels; "
      f"{len(used)}/{len(contract)} contract metrics used"
      + (f"; not shown: {', '.join(missing)}" if missing else ""))
for q in ("0.5", "0.95", "0.99"):
    if not any(f"histogram_quantile({q}," in e for _, e in exprs): bad.append(f"no p{q} latency")
if missing: bad.append("contract metrics missing from the dashboard: " + ", ".join(missing))
if bad: print("\n".join(bad)); sys.exit(1)
PYEOF
}

# Every dashboard expression parses as PromQL: wrap them in a rule file (Grafana's
# variables replaced by plain values) and let promtool check it.
c_grafana_promql() {
    $PY - "$WORK/dashboard-rules.yml" <<'PYEOF' || return 1
import json, sys, yaml
d = json.load(open("deploy/grafana/stage-node.json"))
rules = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            if "expr" in t:
                e = (t["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
                     .replace("$stage", ".*"))
                rules.append({"record": f"dashboard:expr_{len(rules)}", "expr": e})
        walk(p.get("panels", []))
walk(d["panels"])
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
print(f"{len(rules)} panel expressions written as recording rules")
PYEOF
    promtool check rules "$WORK/dashboard-rules.yml"
}

# ---------------------------------------------------------------- kubernetes
c_k8s() {
    $PY - <<'PYEOF'
import json, os, sys, yaml
bad = []
docs = []
for f in ("deploy/k8s/statefulset.yaml", "deploy/k8s/service.yaml", "deploy/k8s/networkpolicy.yaml"):
    for doc in yaml.safe_load_all(open(f)):
        if doc is None: continue
        for k in ("apiVersion", "kind"):
            if not doc.get(k): bad.append(f"{f}: a document without {k}")
        if not (doc.get("metadata") or {}).get("name"): bad.append(f"{f}: a document without metadata.name")
        docs.append((f, doc))
        print(f"{f}: {doc.get('apiVersion')} {doc.get('kind')} {doc.get('metadata', {}).get('name')}")
kz = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
if kz.get("kind") != "Kustomization": bad.append("kustomization.yaml: kind Kustomization")
for r in kz.get("resources", []):
    if not os.path.isfile(os.path.join("deploy/k8s", r)): bad.append(f"kustomization: {r} missing")
if sorted(kz.get("resources", [])) != ["networkpolicy.yaml", "service.yaml", "statefulset.yaml"]:
    bad.append("kustomization should list networkpolicy.yaml, service.yaml and statefulset.yaml "
               "(and no Secret: the operator makes it with scripts/cluster-keys.sh)")
if kz.get("secretGenerator"): bad.append("kustomization: no secretGenerator (keys are never committed)")
names = [(d["kind"], d["metadata"]["name"]) for _, d in docs]
for f, d in docs:
    if d["kind"] not in ("StatefulSet", "Service", "NetworkPolicy"):
        bad.append(f"{f}: {d['kind']} {d['metadata']['name']}: only StatefulSet, Service, NetworkPolicy "
                   "(no Ingress, no Secret with keys)")
if len(names) != len(set(names)): bad.append(f"duplicate objects: {names}")
sts = [d for _, d in docs if d["kind"] == "StatefulSet"]
svcs = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Service"}
if len(sts) != 1: bad.append("exactly one StatefulSet expected")
else:
    s = sts[0]; spec = s["spec"]; tpl = spec["template"]; pod = tpl["spec"]
    if s["metadata"]["name"] != "stage-node": bad.append("StatefulSet name must be stage-node")
    if spec.get("replicas") != 3: bad.append("replicas must be 3")
    hs = svcs.get(spec.get("serviceName"))
    if not hs: bad.append(f"serviceName {spec.get('serviceName')!r} names no Service")
    elif hs["spec"].get("clusterIP") != "None": bad.append("serviceName must name a headless Service")
    labels = tpl["metadata"].get("labels", {})
    sel = spec["selector"]["matchLabels"]
    if any(labels.get(k) != v for k, v in sel.items()): bad.append("selector does not match pod labels")
    for n, svc in svcs.items():
        if any(labels.get(k) != v for k, v in svc["spec"].get("selector", {}).items()):
            bad.append(f"Service {n} selects no pod of the StatefulSet")
    ann = tpl["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "8080" \
            or ann.get("prometheus.io/path") != "/metrics":
        bad.append("pod annotations prometheus.io/scrape|port|path")
    if int(pod.get("terminationGracePeriodSeconds", 0)) < 10:
        bad.append("terminationGracePeriodSeconds should leave time to leave the cluster")
    c = pod["containers"][0]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if sorted(ports.values()) != [7400, 8080]: bad.append(f"container ports 7400 and 8080: {ports}")
    for probe in ("readinessProbe", "livenessProbe"):
        hg = c.get(probe, {}).get("httpGet", {})
        port = ports.get(hg.get("port"), hg.get("port"))
        if hg.get("path") != "/status.json" or port != 8080:
            bad.append(f"{probe} must be httpGet /status.json on 8080 (got {hg})")
    r = c.get("resources", {})
    if not (r.get("requests", {}).get("cpu") and r.get("requests", {}).get("memory")
            and r.get("limits", {}).get("cpu") and r.get("limits", {}).get("memory")):
        bad.append("resources requests and limits (cpu, memory)")
    for svc in svcs.values():
        for p in svc["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            if tp not in ports and tp not in ports.values():
                bad.append(f"Service {svc['metadata']['name']}: targetPort {tp} not a container port")
    if not any(s["spec"].get("clusterIP") != "None" and s["spec"].get("type", "ClusterIP") == "ClusterIP"
               for s in svcs.values()):
        bad.append("a ClusterIP Service for the dashboard/metrics is missing")
    script = c.get("command", [])[-1] if c.get("command") else ""
    for o in ("--join", "--name", "--curve-secret", "--curve-allow"):
        if o not in script: bad.append(f"entrypoint script: {o}")
    open(os.environ["WORK"] + "/entrypoint.sh", "w").write(script)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    seed = env.get("SN_SEED", "")
    if seed != f"{s['metadata']['name']}-0.{spec.get('serviceName')}:7400":
        bad.append(f"SN_SEED {seed!r} is not <statefulset>-0.<serviceName>:7400")
    # No Service reaches outside the cluster (HTTP is for in-cluster scrapes and port-forward).
    for n, svc in svcs.items():
        t = svc["spec"].get("type", "ClusterIP")
        if t != "ClusterIP" or svc["spec"].get("externalIPs") or svc["spec"].get("loadBalancerIP"):
            bad.append(f"Service {n}: type {t} or external IPs expose it outside the cluster")
    # The keys: a Secret volume, read-only, group-readable only (fsGroup), at SN_KEYS.
    psc = pod.get("securityContext", {})
    kv = [v for v in pod.get("volumes", []) if "secret" in v]
    secret = None
    if len(kv) != 1: bad.append("one Secret volume (the keys) expected")
    else:
        v = kv[0]; secret = v["secret"].get("secretName")
        mode = v["secret"].get("defaultMode", 0o644)
        if mode & 0o007: bad.append(f"keys volume: defaultMode {oct(mode)} lets others read the keys")
        if not mode & 0o040 or not psc.get("fsGroup"):
            bad.append("keys volume: group-readable with a pod fsGroup (the node runs as non-root)")
        if v["secret"].get("optional"): bad.append("keys volume: the Secret must not be optional")
        vm = [m for m in c.get("volumeMounts", []) if m["name"] == v["name"]]
        if len(vm) != 1 or not vm[0].get("readOnly"): bad.append("keys volume: mounted once, readOnly")
        elif vm[0]["mountPath"] != env.get("SN_KEYS"):
            bad.append(f"SN_KEYS {env.get('SN_KEYS')!r} is not the keys mount {vm[0]['mountPath']!r}")
    # The NetworkPolicy: cluster port from the StatefulSet's pods only, HTTP from
    # Prometheus pods of the namespace only, nothing else.
    nps = [d for _, d in docs if d["kind"] == "NetworkPolicy"]
    if len(nps) != 1: bad.append("exactly one NetworkPolicy expected")
    else:
        np = nps[0]["spec"]
        if np.get("podSelector", {}).get("matchLabels") != sel:
            bad.append("NetworkPolicy podSelector must be the StatefulSet's selector")
        if "Ingress" not in np.get("policyTypes", []): bad.append("NetworkPolicy: policyTypes Ingress")
        want = {7400: [{"podSelector": {"matchLabels": sel}}],
                8080: [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]}
        seen = {}
        for rule in np.get("ingress", []):
            if not rule.get("from") or not rule.get("ports"):
                bad.append(f"NetworkPolicy: a rule without from or ports admits everyone: {rule}")
                continue
            for pr in rule["ports"]:
                port = ports.get(pr.get("port"), pr.get("port"))
                if port in seen: bad.append(f"NetworkPolicy: port {port} in two rules")
                seen[port] = rule["from"]
        for port, frm in want.items():
            if seen.get(port) != frm: bad.append(f"NetworkPolicy: port {port} must be from {frm}, got {seen.get(port)}")
        for port in seen:
            if port not in want: bad.append(f"NetworkPolicy: port {port} is open")
        print(f"NetworkPolicy: 7400 from {sel}; 8080 from app.kubernetes.io/name=prometheus")
    json.dump({"secret": secret, "keys": env.get("SN_KEYS"), "sts": s["metadata"]["name"],
               "replicas": spec.get("replicas"), "env": env}, open(os.environ["WORK"] + "/k8s.json", "w"))
if bad: print("\n".join(bad)); sys.exit(1)
PYEOF
}

# A throwaway Secret from `scripts/cluster-keys.sh k8s N` (N = replicas): the name the
# StatefulSet mounts, one NAME.key per pod with its own keypair, and an allow list mapping
# each public key to its pod name. Its files are written out as the kubelet would mount
# them, for the entrypoint's dry run.
c_k8s_secret() {
    [[ -s "$WORK/k8s.json" ]] || { echo "no StatefulSet summary (the k8s check failed)"; return 1; }
    local kg n
    kg=$(keygen_bin)
    n=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["replicas"])' "$WORK/k8s.json")
    echo "keygen: $kg; scripts/cluster-keys.sh k8s $n"
    STAGE_NODE=$kg /bin/sh scripts/cluster-keys.sh k8s "$n" >"$WORK/secret.yaml" 2>"$WORK/secret.log" \
        || { cat "$WORK/secret.log"; return 1; }
    $PY - "$WORK" <<'PYEOF'
import json, os, re, sys, yaml
work = sys.argv[1]
k = json.load(open(work + "/k8s.json"))
docs = [d for d in yaml.safe_load_all(open(work + "/secret.yaml")) if d]
bad = []
if len(docs) != 1 or docs[0].get("kind") != "Secret" or docs[0].get("apiVersion") != "v1":
    print("expected one v1 Secret"); sys.exit(1)
sec = docs[0]
if sec["metadata"]["name"] != k["secret"]:
    bad.append(f"Secret {sec['metadata']['name']} is not the StatefulSet's {k['secret']}")
data = sec.get("stringData") or {}
pods = [f"{k['sts']}-{i}" for i in range(k["replicas"])]
if sorted(data) != sorted([p + ".key" for p in pods] + ["allow.list"]):
    bad.append(f"Secret keys {sorted(data)}: want one POD.key per pod and allow.list")
z85 = r"[0-9A-Za-z.:+=^!/*?&<>()\[\]{}@%$#-]{40}"
allow = {}
for line in data.get("allow.list", "").splitlines():
    line = line.strip()
    if not line or line.startswith("#"): continue
    f = line.split()
    if len(f) != 2 or not re.fullmatch(z85, f[0]): bad.append(f"allow.list line {line!r}"); continue
    allow[f[1]] = f[0]
pubs = []
for p in pods:
    m = re.search(rf"^public-key = ({z85})$", data.get(p + ".key", ""), re.M)
    if not m or not re.search(rf"^secret-key = {z85}$", data.get(p + ".key", ""), re.M):
        bad.append(f"{p}.key is not a keypair file"); continue
    pubs.append(m.group(1))
    if allow.get(p) != m.group(1): bad.append(f"allow.list does not map {p}'s key to {p}")
if len(set(pubs)) != len(pubs): bad.append("two pods share a keypair")
seed = k["env"].get("SN_SEED", "").split(".", 1)[0]
if seed not in allow: bad.append(f"the seed {seed} (first label of SN_SEED) is not in allow.list")
out = work + "/k8s-keys"
os.makedirs(out)
for name, text in data.items():
    if not re.fullmatch(r"[-._a-zA-Z0-9]+", name): bad.append(f"Secret key {name!r} is not valid")
    else: open(os.path.join(out, name), "w").write(text)
print(f"Secret {sec['metadata']['name']}: {', '.join(sorted(data))}; allow.list: "
      + ", ".join(f"{n}={v[:8]}..." for n, v in sorted(allow.items())))
if bad: print("\n".join(bad)); sys.exit(1)
PYEOF
}

# The StatefulSet's shell entrypoint: shellcheck it as POSIX sh, then run it (under
# Debian's dash, the /bin/sh of the image) with a fake stage-node that prints its argv,
# the keys of the throwaway Secret at SN_KEYS. A pod without a key in the Secret must not start.
c_k8s_entrypoint() {
    [[ -s "$WORK/entrypoint.sh" ]] || { echo "no entrypoint extracted (the k8s check failed)"; return 1; }
    [[ -d "$WORK/k8s-keys" ]] || { echo "no throwaway Secret (the Secret check failed)"; return 1; }
    shellcheck -s sh "$WORK/entrypoint.sh" || return 1
    mkdir -p "$WORK/bin"
    printf '#!/bin/sh\nprintf "%%s\\n" "$@"\n' >"$WORK/bin/stage-node"
    chmod +x "$WORK/bin/stage-node"
    local ord args keys=$WORK/k8s-keys
    entry() {   # entry ORDINAL: the entrypoint's stage-node argv, one line (one per line in k8s-args-N)
        env -i PATH="$WORK/bin:/usr/bin:/bin" POD_NAME="stage-node-$1" SN_CLUSTER=stage \
            SN_SEED=stage-node-0.stage-node:7400 SN_SCRIPT=scripts/demo.lua SN_THREADS=2 \
            SN_KEYS="$keys" /bin/sh "$WORK/entrypoint.sh" | tee "$WORK/k8s-args-$1" | tr '\n' ' '
    }
    for ord in 0 1 2; do
        args=$(entry "$ord" 2>/dev/null)
        echo "stage-node-$ord -> stage-node $args"
        [[ "$args" == *"--name stage-node-$ord "* ]] || { echo "  --name is not the pod name"; return 1; }
        [[ "$args" == *"--listen tcp://0.0.0.0:7400 "* ]] || { echo "  no --listen"; return 1; }
        [[ "$args" != *--insecure* ]] || { echo "  --insecure"; return 1; }
        [[ "$args" == *"--curve-secret $keys/stage-node-$ord.key --curve-allow $keys/allow.list "* ]] \
            || { echo "  not --curve-secret SN_KEYS/<pod>.key --curve-allow SN_KEYS/allow.list"; return 1; }
        [[ "$args" == *"--http 0.0.0.0:8080 "* ]] || { echo "  no --http"; return 1; }
        if [[ $ord == 0 ]]; then
            [[ "$args" != *--join* ]] || { echo "  the seed must not --join"; return 1; }
        else
            [[ "$args" == *"--join stage-node-0.stage-node:7400 "* ]] || { echo "  no --join seed"; return 1; }
        fi
    done
    if args=$(entry 3 2>"$WORK/entry3.err") && [[ -n "$args" ]]; then
        echo "stage-node-3 (no key in the Secret) started: $args"; return 1
    fi
    echo "stage-node-3 (no key in the Secret) -> refused: $(cat "$WORK/entry3.err")"
}

# kubectl kustomize renders the directory (NetworkPolicy, two Services, StatefulSet), and
# an overlay adding the throwaway Secret renders it under the name the pods mount.
c_kustomize() {
    if ! command -v kubectl >/dev/null 2>&1; then echo "kubectl not installed" >&3; return 0; fi
    kubectl kustomize deploy/k8s >"$WORK/kustomized.yaml" || return 1
    [[ -s "$WORK/secret.yaml" ]] || { echo "no throwaway Secret (the Secret check failed)"; return 1; }
    mkdir -p "$WORK/kz/overlay"
    cp -r deploy/k8s "$WORK/kz/base"
    cp "$WORK/secret.yaml" "$WORK/kz/overlay/secret.yaml"
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\n  - secret.yaml\n' \
        >"$WORK/kz/overlay/kustomization.yaml"
    kubectl kustomize "$WORK/kz/overlay" >"$WORK/kustomized-keys.yaml" || return 1
    $PY - "$WORK/kustomized.yaml" "$WORK/kustomized-keys.yaml" <<'PYEOF'
import sys, yaml
base = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
print("kubectl kustomize deploy/k8s:", ", ".join(d["kind"] + "/" + d["metadata"]["name"] for d in base))
kinds = sorted(d["kind"] for d in base)
assert kinds == ["NetworkPolicy", "Service", "Service", "StatefulSet"], f"unexpected objects {kinds}"
full = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
secrets = [d["metadata"]["name"] for d in full if d["kind"] == "Secret"]
sts = [d for d in full if d["kind"] == "StatefulSet"][0]
mounted = [v["secret"]["secretName"] for v in sts["spec"]["template"]["spec"]["volumes"] if "secret" in v]
print(f"with the throwaway Secret: {len(full)} objects; Secret {secrets}, StatefulSet mounts {mounted}")
assert len(full) == 5 and secrets == mounted, "the Secret is not the one the StatefulSet mounts"
PYEOF
}

# ---------------------------------------------------------------- Dockerfile
# The stage a line belongs to: lines after the last FROM are the runtime stage.
runtime_stage() { awk '/^FROM /{n++} {if (n == stages) print}' stages="$(grep -c '^FROM ' deploy/Dockerfile)" deploy/Dockerfile; }
build_stage() { awk '/^FROM /{n++} {if (n == 1) print}' deploy/Dockerfile; }
# Package names on `apt-get install` lines (continuations joined) of stdin.
apt_pkgs() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -o 'apt-get install[^&]*' \
             | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vxE 'apt-get|install' || true; }

c_dockerfile() {
    local bad=0 rt bs n
    n=$(grep -c '^FROM ' deploy/Dockerfile)
    echo "$n stages: $(grep '^FROM ' deploy/Dockerfile | tr '\n' ';')"
    [[ $n -ge 2 ]] || { echo "expected a multi-stage build"; bad=1; }
    grep '^FROM ' deploy/Dockerfile | grep -qvE '^FROM debian:bookworm(-slim)?(@sha256:[0-9a-f]+)? AS [a-z]+$' \
        && { echo "every stage must be FROM debian:bookworm[-slim] AS NAME"; bad=1; }
    rt=$(runtime_stage); bs=$(build_stage)
    if grep -E -- '-dev\b' <<<"$rt"; then echo "-dev packages in the runtime stage (above)"; bad=1; fi
    grep -qE '(gcc|cmake|pkg-config|make)\b' <<<"$(apt_pkgs <<<"$rt")" && { echo "build tools in the runtime stage"; bad=1; }
    grep -q 'cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSN_TESTS=OFF -DSN_BENCH=OFF' <<<"$bs" \
        || { echo "build stage: the CMake release configure line"; bad=1; }
    grep -q 'cmake --build build/release' <<<"$bs" || { echo "build stage: cmake --build build/release"; bad=1; }
    # Every -dev package of the "build" level of scripts/deps.sh is installed in the build stage.
    local p dev
    dev=$(apt_pkgs <<<"$bs")
    for p in $(sed -n '/^build_pkgs=(/,/)/p' scripts/deps.sh | tr -s ' ()' '\n' | grep -E -- '-dev$|^(cmake|gcc|pkg-config)$'); do
        grep -qx "$p" <<<"$dev" || { echo "build stage lacks $p (scripts/deps.sh build level)"; bad=1; }
    done
    grep -q 'rm -rf /var/lib/apt/lists' <<<"$rt" || { echo "runtime stage: apt lists not cleaned"; bad=1; }
    grep -q -- '--no-install-recommends' <<<"$rt" || { echo "runtime stage: --no-install-recommends"; bad=1; }
    # Runtime contents.
    grep -qE '^COPY --from=[a-z]+ /src/build/release/stage-node /usr/local/bin/stage-node$' <<<"$rt" \
        || { echo "runtime stage: binary at /usr/local/bin/stage-node"; bad=1; }
    grep -qE '^COPY preload/ /opt/stage/preload/' <<<"$rt" || { echo "runtime: /opt/stage/preload"; bad=1; }
    grep -qE '^COPY scripts/ /opt/stage/scripts/' <<<"$rt" || { echo "runtime: /opt/stage/scripts"; bad=1; }
    grep -qx 'WORKDIR /opt/stage' <<<"$rt" || { echo "runtime: WORKDIR /opt/stage"; bad=1; }
    local user
    user=$(grep '^USER ' <<<"$rt" | tail -1 | awk '{print $2}')
    [[ -n "$user" && "${user%%:*}" != root && "${user%%:*}" != 0 ]] || { echo "runtime: USER must be non-root (got '$user')"; bad=1; }
    if ! grep -qE '^EXPOSE .*\b7400\b' <<<"$rt" || ! grep -qE '^EXPOSE .*\b8080\b' <<<"$rt"; then
        echo "runtime: EXPOSE 7400 8080"; bad=1
    fi
    grep -q '^HEALTHCHECK ' <<<"$rt" || { echo "runtime: HEALTHCHECK"; bad=1; }
    grep -qE '^ENTRYPOINT \["/usr/local/bin/stage-node"\]' <<<"$rt" || { echo "runtime: ENTRYPOINT stage-node"; bad=1; }
    grep -qiE 'apt-get install[^&]*\b(curl|wget)\b' deploy/Dockerfile && { echo "curl/wget in the image"; bad=1; }
    # Every COPY source from the build context exists in the repository.
    local src
    while read -r src; do
        if [[ -e "$src" ]]; then echo "COPY source exists: $src"
        else echo "COPY source missing: $src"; bad=1; fi
    done < <(grep -E '^COPY ' deploy/Dockerfile | grep -v -- '--from=' \
             | awk '{for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i}')
    # And none of them is excluded by .dockerignore.
    if [[ -f .dockerignore ]]; then
        for src in CMakeLists.txt node proto preload scripts; do
            grep -qxE "/?${src}/?" .dockerignore && { echo ".dockerignore excludes $src"; bad=1; }
        done
    fi
    echo "runtime packages: $(apt_pkgs <<<"$rt" | tr '\n' ' ')"
    return $bad
}

# The runtime package names exist in Debian 12 (apt's local lists; no network).
c_runtime_pkgs_exist() {
    if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
        echo "no apt package lists here (run apt-get update to enable)" >&3; return 0
    fi
    local p bad=0
    for p in $(apt_pkgs <<<"$(runtime_stage)"); do
        if apt-cache show "$p" >/dev/null 2>&1; then echo "$p: $(apt-cache show "$p" | awk '/^Version:/{print $2; exit}')"
        else echo "$p: not a Debian package here"; bad=1; fi
    done
    return $bad
}

# Each shared library the built binary links directly (ELF NEEDED) comes from a
# package the runtime stage installs (libc6 is in the base image).
c_runtime_libs() {
    local bin=build/stage-node
    [[ -x $bin ]] || bin=build/release/stage-node
    if [[ ! -x $bin ]]; then echo "no built binary (make build) to compare against" >&3; return 0; fi
    local pkgs so path pkg bad=0
    pkgs=$(apt_pkgs <<<"$(runtime_stage)")
    for so in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        path=$(ldd "$bin" | awk -v so="$so" '$1 == so {print $3}')
        pkg=""
        for cand in "$path" "$(readlink -f "$path" 2>/dev/null)" "/usr$path" "/usr$(readlink -f "$path" 2>/dev/null)"; do
            [[ -n "$cand" ]] && pkg=$(dpkg -S "$cand" 2>/dev/null | head -1 | cut -d: -f1) && [[ -n "$pkg" ]] && break
        done
        case "$so" in libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*) pkg=${pkg:-libc6} ;; esac
        if [[ "$pkg" == libc6 ]]; then echo "$so <- libc6 (base image)"
        elif [[ -n "$pkg" ]] && grep -qx "$pkg" <<<"$pkgs"; then echo "$so <- $pkg (installed)"
        else echo "$so <- ${pkg:-unknown package}: NOT installed by the runtime stage"; bad=1; fi
    done
    return $bad
}

# ---------------------------------------------------------------- health probe
# Run the exact probe of the Dockerfile HEALTHCHECK and of the compose healthcheck
# against a local HTTP server: it must pass on 200 from /status.json and fail on
# 503, on a wrong path and on a closed port.
c_probe() {
    $PY - "$WORK" <<'PYEOF' || return 1
import json, re, sys, yaml
work = sys.argv[1]
text = open("deploy/Dockerfile").read().replace("\\\n", " ")
m = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M)
cmd = json.loads(m.group(1))
assert cmd[:2] == ["/bin/bash", "-c"], cmd
open(work + "/probe-docker.sh", "w").write(cmd[2])
d = yaml.safe_load(open("docker-compose.yml"))
for s in ("seed", "node2", "node3"):
    t = d["services"][s]["healthcheck"]["test"]
    assert t[:3] == ["CMD", "/bin/bash", "-c"], t
    open(f"{work}/probe-{s}.sh", "w").write(t[3].replace("$$", "$"))   # compose's $$ escape
print("probes extracted from deploy/Dockerfile and docker-compose.yml")
PYEOF
    cat >"$WORK/server.py" <<'PYEOF'
import http.server, sys, threading
mode = {"v": "ok"}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/mode/ok" or self.path == "/mode/down":
            mode["v"] = self.path.rsplit("/", 1)[1]; code = 200
        elif self.path == "/status.json": code = 200 if mode["v"] == "ok" else 503
        else: code = 404
        body = b'{"node":"probe-test","members":[]}'
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass   # a probe may close once it has read the status line
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PYEOF
    $PY "$WORK/server.py" >"$WORK/port" &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 50); do port=$(head -1 "$WORK/port" 2>/dev/null); [[ -n "$port" ]] && break; sleep 0.1; done
    [[ -n "$port" ]] || { echo "test server did not start"; return 1; }
    # A closed port: bind one and free it.
    local closed
    closed=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    run_probe() {   # run_probe FILE PORT -> exit status of the probe
        local f=$1 p=$2
        if [[ $f == *probe-docker.sh ]]; then
            env -i PATH=/usr/bin:/bin SN_HTTP_PORT="$p" timeout 10 /bin/bash -c "$(cat "$f")"
        else
            timeout 10 /bin/bash -c "$(sed "s|/127.0.0.1/8080|/127.0.0.1/$p|" "$f")"
        fi
    }
    local f bad=0 name
    for f in "$WORK"/probe-*.sh; do
        name=$(basename "$f" .sh)
        [[ $name == probe-docker ]] || grep -q '/127.0.0.1/8080' "$f" || { echo "$name: not on port 8080"; bad=1; }
        grep -q 'GET /status.json ' "$f" || { echo "$name: does not GET /status.json"; bad=1; }
        exec 4<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /mode/ok HTTP/1.0\r\n\r\n' >&4 && cat <&4 >/dev/null; exec 4>&-
        if run_probe "$f" "$port" 2>/dev/null; then echo "$name: 200 -> healthy"
        else echo "$name: 200 from /status.json judged unhealthy"; bad=1; fi
        exec 4<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /mode/down HTTP/1.0\r\n\r\n' >&4 && cat <&4 >/dev/null; exec 4>&-
        if run_probe "$f" "$port" 2>/dev/null; then echo "$name: 503 judged healthy"; bad=1
        else echo "$name: 503 -> unhealthy"; fi
        if run_probe "$f" "$closed" 2>/dev/null; then echo "$name: closed port judged healthy"; bad=1
        else echo "$name: closed port -> unhealthy"; fi
        if run_probe "$(sed 's|/status.json|/nope|' "$f" >"$WORK/wrongpath"; echo "$WORK/wrongpath")" "$port" 2>/dev/null; then
            echo "$name: 404 judged healthy"; bad=1
        else echo "$name: 404 (wrong path) -> unhealthy"; fi
    done
    kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
    return $bad
}

# ---------------------------------------------------------------- this script
c_selfcheck() {
    shellcheck -x scripts/deploy-check.sh && shellcheck -s sh scripts/cluster-keys.sh
}

echo "deploy-check: offline checks of the deployment files (no Docker, no Kubernetes)"
check "tools: docker-compose, promtool, shellcheck, readelf, $PY + PyYAML" c_tools
check "docker-compose -f docker-compose.yml config -q" c_compose_config
check "no --insecure in a shipped file (docker-compose.yml, deploy/**), no committed secret key" c_no_insecure
check "docker-compose.yml: keys, 3 CURVE nodes (seed, node2, node3 joining seed:7400), prometheus, loopback ports" c_compose_shape
check "docker-compose.yml: the keys service's run gives each node its own key and the allow list (twice: idempotent)" c_compose_keys
check "docker-compose.yml: the nodes' commands, run on loopback with those keys, form one CURVE cluster" c_compose_live
check "promtool check config deploy/prometheus.yml" c_promtool
check "deploy/prometheus.yml: 5 s interval, /metrics, seed/node2/node3:8080" c_prom_shape
check "deploy/grafana/stage-node.json: valid JSON, variables, only contract metrics" c_grafana
check "deploy/grafana/stage-node.json: every expression parses as PromQL (promtool check rules)" c_grafana_promql
check "deploy/k8s: documents parse, StatefulSet/Services/NetworkPolicy/keys volume/probes/resources agree" c_k8s
check "deploy/k8s: a throwaway Secret from scripts/cluster-keys.sh k8s matches the StatefulSet" c_k8s_secret
check "deploy/k8s: the StatefulSet entrypoint (shellcheck, dry run with a fake stage-node and the Secret)" c_k8s_entrypoint
check "deploy/k8s: pods 0..2 as the entrypoint starts them, run on loopback with the Secret, form one CURVE cluster" c_k8s_live
check "deploy/k8s: kubectl kustomize renders, with the throwaway Secret too (optional)" c_kustomize
check "deploy/Dockerfile: stages, runtime without -dev or build tools, user, ports, paths" c_dockerfile
check "deploy/Dockerfile: runtime packages exist in Debian 12 (apt-cache, local lists)" c_runtime_pkgs_exist
check "deploy/Dockerfile: runtime packages cover the binary's NEEDED libraries" c_runtime_libs
check "health probes (Dockerfile, compose) against a local /status.json server" c_probe
check "shellcheck scripts/deploy-check.sh scripts/cluster-keys.sh" c_selfcheck

echo
if [[ $skipped -gt 0 ]]; then echo "deploy-check: $skipped skipped (see SKIP lines above)"; fi
if [[ $failed -gt 0 ]]; then
    printf 'deploy-check: FAILED: %s\n' "${failures[@]}"
fi
echo "deploy-check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
