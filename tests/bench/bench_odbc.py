#!/usr/bin/env python3
"""Primary-key SELECTs per second through the odbc library from 100 concurrent actors,
against pgbench -S (its select-only script) with 100 clients on the same PostgreSQL server,
made here in a temp dir (initdb, pg_ctl as the postgres user, a free port) and stopped at
the end. Run as root (CI does):  python3 tests/bench/bench_odbc.py build/release/stage-node
Prints one line per side and the ratio."""
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile

PG = "/usr/lib/postgresql/15/bin"
CLIENTS, SECONDS, SCALE = 100, 10, 10
POOL = int(os.environ.get("ODBC_POOL", "16"))  # connections: 100 actors share them


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_pg(*argv, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + list(argv), check=True,
                          capture_output=True, text=True, **kw)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/release/stage-node"
    root = tempfile.mkdtemp(prefix="bench-odbc.")
    pw = pwd.getpwnam("postgres")
    os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = os.path.join(root, "data"), free_port()
    as_pg(PG + "/initdb", "-D", data, "-A", "trust", "-U", "postgres")
    as_pg(PG + "/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-o",
          "-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=250" % (port, root),
          "start")
    try:
        common = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "postgres"]
        as_pg(PG + "/pgbench", "-i", "-q", "-s", str(SCALE), *common)
        r = as_pg(PG + "/pgbench", "-S", "-c", str(CLIENTS), "-j", str(os.cpu_count() or 4),
                  "-T", str(SECONDS), *common)
        pgb = float(re.search(r"tps = ([0-9.]+)", r.stdout).group(1))
        print("pgbench -S, %d clients: %.0f selects/s" % (CLIENTS, pgb))

        script = os.path.join(root, "w.lua")
        with open(script, "w") as f:
            f.write(r'''
local DB = {Driver = "PostgreSQL Unicode", Server = "127.0.0.1", Port = %d,
            Database = "postgres", Uid = "postgres"}
local N = %d
odbc.new(DB, function (adp)
  local n, first = 0, os.time()
  while os.time() < first + %d do
    local aid = math.random(1, N)
    adp.execute("SELECT abalance FROM pgbench_accounts WHERE aid = ?", aid).fetch()
    n = n + 1
  end
  print("DONE", n)
  stage.signal("main:done", n)
end)
''' % (port, SCALE * 100000, SECONDS))
        main_lua = os.path.join(root, "main.lua")
        with open(main_lua, "w") as f:
            f.write('''
local total, seen = 0, 0
stage.waitfor("done", function (n)
  total, seen = total + n, seen + 1
  if seen == %d then print("TOTAL", total) stage.exit() end
end)
''' % CLIENTS)
        out = subprocess.run([binary, "--threads", str(os.cpu_count() or 4),
                              "--set", "odbc_pool=%d" % POOL,
                              "--actor", "w=%s:%d" % (script, CLIENTS), main_lua],
                             capture_output=True, text=True, timeout=SECONDS * 10)
        m = re.search(r"TOTAL\t(\d+)", out.stdout)
        if not m:
            sys.exit("stage-node gave no total:\n" + out.stdout[-2000:] + out.stderr[-2000:])
        ours = int(m.group(1)) / SECONDS
        print("stage-node odbc, %d actors on %d connections: %.0f selects/s" % (CLIENTS, POOL, ours))
        print("ratio: %.2f of pgbench -S" % (ours / pgb))
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", PG + "/pg_ctl", "-D", data, "-m",
                        "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
