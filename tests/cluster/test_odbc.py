"""The odbc library (docs/lua-api.md, "Databases: odbc") against real databases the tests
start: SQLite through libsqlite3odbc (a file in the test's directory) and PostgreSQL through
odbc-postgresql (a cluster made here with initdb in the test's directory, on a free port,
run as the postgres user, stopped at the end). Nothing is mocked."""
import os
import pwd
import shutil
import subprocess
import tempfile

from harness import check, timeout, free_port

PG_BIN = "/usr/lib/postgresql/15/bin"


def sqlite(ctx, name="t.db"):
    return "DRIVER=SQLite3;Database=" + ctx.path(name)


def start_pg(ctx, root=None):
    """A PostgreSQL server of the test's own, its files in root (the test's directory by
    default); returns (port, start, stop)."""
    pw = pwd.getpwnam("postgres")
    root = root or ctx.path("pg")
    os.makedirs(root, exist_ok=True)
    os.chown(root, pw.pw_uid, pw.pw_gid)
    data = os.path.join(root, "data")
    port = free_port()
    # The Unix socket goes to a short directory of its own: a socket path has at most 107
    # bytes, and the test's directory is as deep as the checkout.
    sockdir = tempfile.mkdtemp(prefix="sn-pg-")
    os.chown(sockdir, pw.pw_uid, pw.pw_gid)
    ctx.add_cleanup(lambda: shutil.rmtree(sockdir, ignore_errors=True))

    log = os.path.join(root, "log")

    def as_pg(*argv):
        r = subprocess.run(["runuser", "-u", "postgres", "--"] + list(argv),
                           capture_output=True, timeout=60)
        if r.returncode != 0 and os.path.exists(log):
            with open(log, errors="replace") as f:
                text = f.read()
            fatal = [l for l in text.splitlines() if "FATAL" in l or "ERROR" in l]
            tail = "\n--- server log (errors first):\n" + "\n".join(fatal + [text[-1200:]])
        else:
            tail = ""
        check(r.returncode == 0,
              "%s: %s%s" % (argv[0], (r.stdout + r.stderr).decode()[-400:], tail))

    as_pg(PG_BIN + "/initdb", "-D", data, "-A", "trust", "-U", "postgres")

    def start():
        as_pg(PG_BIN + "/pg_ctl", "-D", data, "-l", log, "-w", "-o",
              "-p %d -k %s -c listen_addresses=127.0.0.1" % (port, sockdir), "start")

    def stop():
        subprocess.run(["runuser", "-u", "postgres", "--", PG_BIN + "/pg_ctl", "-D", data,
                        "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)

    start()
    ctx.add_cleanup(stop)
    return port, start, stop


def pg_conn(port, extra=""):
    return ('{Driver = "PostgreSQL Unicode", Server = "127.0.0.1", Port = %d, '
            'Database = "postgres", Uid = "postgres"%s}' % (port, extra))


API_LUA = r'''
local DB = @DB@
odbc.new(DB, function (adp)
  adp.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(80), score FLOAT)")
  local rs = adp.execute("INSERT INTO users (id, name, score) VALUES (?, ?, ?)", 1, "ann", 1.5)
  print("affected", rs.affected)
  adp.execute("INSERT INTO users (id, name, score) VALUES (?, ?, ?)", 2,
              "bob'); DROP TABLE users; --", nil)
  adp.execute({"INSERT INTO users (id, name) VALUES (?, ?)", "i", "C"}, 3, "cy")
  local rows = adp.execute("SELECT id, name, score FROM users ORDER BY id").fetch({"id"})
  for id = 1, 3 do print("row", id, rows[id].name, rows[id].score) end
  local byname = adp.execute("SELECT id, name FROM users ORDER BY id").fetch({"name", "$"})
  print("byname", byname.cy[2].id)
  print("last", adp.execute("SELECT 1 AS sum").fetch().sum)
  print("cb", adp.execute("SELECT 5 AS five").fetch(function (r) return r.five * 2 end))
  adp.begin(function (a)
    a.execute("UPDATE users SET name = ? WHERE id = ?", "zed", 1)
    return false
  end)
  print("rolled back", adp.execute("SELECT name FROM users WHERE id = ?", 1).fetch().name)
  adp.begin()
  adp.execute("UPDATE users SET name = ? WHERE id = ?", "zed", 1)
  adp.commit()
  print("committed", adp.execute("SELECT name FROM users WHERE id = ?", 1).fetch().name)
  local ok, err = pcall(adp.execute, "SELECT nope FROM users")
  print("bad sql", ok, err:match("^odbc: the statement failed") ~= nil)
  local n = 0
  local v = odbc.cache("ONE", function () n = n + 1 return adp.execute("SELECT 1 AS x").fetch() end)
  odbc.cache("ONE", function () n = n + 1 end)
  print("cache", v.x, n, odbc.cache("ONE").x)
  odbc.purge({"ONE"})
  print("purged", odbc.cache("ONE"))
end)
print("started")
local ok, err = pcall(odbc.new(DB).execute, "SELECT 1")
print("top level", ok, err:match("inside odbc.new's function") ~= nil)
'''

API_OUT = ["started", "top level\tfalse\ttrue", "affected\t1", "row\t1\tann\t1.5",
           "row\t2\tbob'); DROP TABLE users; --\tnil", "row\t3\tcy\tnil", "byname\t3",
           "last\t1", "cb\t10", "rolled back\tann", "committed\tzed", "bad sql\tfalse\ttrue",
           "cache\t1\t1\t1", "purged\tnil"]


def run_api(ctx, db):
    a = ctx.node("A", script=ctx.script("main.lua", API_LUA.replace("@DB@", db)))
    a.wait_line(r"^purged\t", 30)
    lines = [l for l in a.lines() if not l.startswith("#")]
    check(lines[:len(API_OUT)] == API_OUT, "the API's output: %r" % lines)


@timeout(60)
def test_odbc_sqlite_api(ctx):
    run_api(ctx, '"%s"' % sqlite(ctx))


@timeout(120)
def test_odbc_postgres_api(ctx):
    port, _, _ = start_pg(ctx)
    run_api(ctx, pg_conn(port))


@timeout(120)
def test_odbc_postgres_from_a_deep_directory(ctx):
    """A checkout at a long path still starts PostgreSQL. The server's Unix socket once
    lived in the test's directory, and a socket path has at most 107 bytes: in CI
    (/check/work/main/...) the longest test name pushed it to 108 and the server would not
    start."""
    root = ctx.path(os.path.join("d" * 60, "pg"))
    port, _, _ = start_pg(ctx, root)
    a = ctx.node("A", script=ctx.script("main.lua", """
odbc.new(%s, function (adp) print("one", adp.execute("SELECT 1 AS one").fetch().one) end)
""" % pg_conn(port)))
    a.wait_line(r"^one\t1$", 30)


APPLY_LUA = r"""
local DB = @DB@
local function state(adp)
  local out = {}
  local rows = adp.execute("SELECT owner, slot, kind, n FROM items ORDER BY owner, slot")
  for b in rows.next do
    for _, r in ipairs(b) do
      out[#out + 1] = r.owner .. "/" .. r.slot .. "=" .. tostring(r.kind) .. ":" .. tostring(r.n)
    end
  end
  return table.concat(out, " ")
end
local function actions(log)
  local out = {}
  for i, e in ipairs(log) do
    local o = e.where.owner or e.value.owner.n
    local s = e.where.slot or (e.value.slot and e.value.slot.n) or "*"
    out[i] = e.action .. ":" .. e.table .. ":" .. o .. "/" .. s
  end
  return table.concat(out, " ")
end
odbc.new(DB, function (adp)
  adp.execute("CREATE TABLE items (owner INTEGER NOT NULL, slot INTEGER NOT NULL, " ..
              "kind VARCHAR(40), n INTEGER, PRIMARY KEY (owner, slot))")
  for _, r in ipairs({{1, 1, "sword", 1}, {1, 2, "shield", 1}, {1, 3, "potion", 5},
                      {2, 1, "bow", 1}}) do
    adp.execute("INSERT INTO items (owner, slot, kind, n) VALUES (?, ?, ?, ?)", table.unpack(r))
  end
  local rs = adp.execute("SELECT owner, slot, kind, n FROM items ORDER BY owner, slot")
  local rows = rs.fetch({"owner", "slot"})
  print("unchanged", select("#", rs.apply(rows)))
  rows[1][3].n = 4                           -- UPDATE
  rows[1][2] = nil                           -- DELETE
  rows[2][2] = {kind = "arrow", n = 20}      -- INSERT
  rows[3] = {[1] = {kind = "ring", n = 1}}   -- INSERT under a new owner
  local got = table.pack(rs.apply(rows, function (keys, log) return #keys, log end))
  print("apply", got[1], actions(got[2]))
  local u = got[2][2]
  print("update log", u.where.owner, u.where.slot, u.value.n.o, u.value.n.n, u.value.kind)
  print("state", state(adp))
  print("again", select("#", rs.apply(rows)))
  print("near", rs.near(rows, {1, 3}).kind, rs.near(rows, {9, 9}), rs.near(rows, 1)[1].kind,
        rs.near(rows, {1, 3, "n"}), rows[9])
  print("erase", rs.erase(rows, {1, 1}), rs.erase(rows, {1, 1}), rs.erase(rows[2], 1),
        rs.erase(rows, {7, 7}))
  rows[1][3] = {n = 9}                       -- a replaced row keeps its other columns
  rows[2][2].kind = nil                      -- NULL
  print("adapter apply", actions(adp.apply(rows, "items")))
  print("merged", rows[1][3].kind, rows[1][3].n)
  print("state", state(adp))
  rows[3][1].n = 2                           -- apply on a table in the rows
  print("sub apply", actions(rs.apply(rows[3])))
  print("state", state(adp))
  -- the statements of one apply run in one transaction: a failure leaves none of them
  local mine = adp.execute("SELECT owner, slot, kind, n FROM items WHERE owner = ?", 1)
  local r1 = mine.fetch({"owner", "slot"})
  r1[1][3].n = 100
  r1[3] = {[1] = {kind = "dup"}}             -- (3, 1) is in the table: the INSERT fails
  local ok, err = pcall(mine.apply, r1)
  print("failed apply", ok, err:match("^resultset.apply: odbc: the statement failed: ") ~= nil)
  print("state", state(adp))
  -- rows kept by odbc.cache, applied by another adapter
  odbc.cache("ITEMS", function ()
    return adp.execute("SELECT owner, slot, kind, n FROM items").fetch({"owner", "slot"})
  end)
  odbc.new(DB, function (adp2) -- another adapter, run in this coroutine
  local cached = odbc.cache("ITEMS")
  cached[3][1].kind = "crown"
  print("cached apply", actions(adp2.apply(cached, "items")))
  print("state", state(adp))
  local function why(f, ...)
    local ok, err = pcall(f, ...)
    return ok and "ok" or err:gsub("^[^:]*:%d+: ", "")
  end
  local rs = adp2.execute("SELECT owner, slot, kind FROM items")
  print("err plain", why(rs.apply, {}))
  local numbered = rs.fetch({"$"})
  print("err numbered", why(rs.apply, numbered))
  local j = adp2.execute("SELECT a.owner, a.slot, a.kind FROM items a JOIN items b ON " ..
                        "a.owner = b.owner AND a.slot = b.slot")
  local jr = j.fetch({"owner", "slot"})
  jr[1][3].kind = "x"
  print("err join", why(j.apply, jr))
  print("err value", why(function ()
    local r = adp2.execute("SELECT owner, slot, kind FROM items").fetch({"owner", "slot"})
    r[1][3].kind = {}
    return adp2.apply(r, "items")
  end))
  print("err erase", why(rs.erase, 5, 1))
  print("done")
  end)
end)
"""

APPLY_OUT = [
    "unchanged\t0",
    "apply\t0\t8:items:1/2 2:items:1/3 4:items:2/2 4:items:3/1",
    "update log\t1\t3\t5\t4\tnil",
    "state\t1/1=sword:1 1/3=potion:4 2/1=bow:1 2/2=arrow:20 3/1=ring:1",
    "again\t0",
    "near\tpotion\tnil\tsword\t4\tnil",
    "erase\t1\t0\t1\t0",
    "adapter apply\t8:items:1/1 2:items:1/3 8:items:2/1 2:items:2/2",
    "merged\tpotion\t9",
    "state\t1/3=potion:9 2/2=nil:20 3/1=ring:1",
    "sub apply\t2:items:3/1",
    "state\t1/3=potion:9 2/2=nil:20 3/1=ring:2",
    "failed apply\tfalse\ttrue",
    "state\t1/3=potion:9 2/2=nil:20 3/1=ring:2",
    "cached apply\t2:items:3/1",
    "state\t1/3=potion:9 2/2=nil:20 3/1=crown:2",
    "err plain\tresultset.apply: expected rows from resultset.fetch with key columns (or a "
    "table in them), got a table of another origin",
    "err numbered\tresultset.apply: row numbers ('$') are no column of the table; fetch with "
    "key columns",
    "err join\tresultset.apply: cannot tell the table from 'SELECT a.owner, a.slot, a.kind "
    "FROM items a JOIN items b ON a.owner = b.owner AND a.slot = b.slot'; name it: "
    "resultset.apply(rows, \"table\")",
    "err value\tadapter.apply: rows[1][3].kind is a table; a column takes nil, a boolean, a "
    "number or a string",
    "err erase\tresultset.erase: expected rows from resultset.fetch (a table), got number",
    "done",
]


def run_apply(ctx, db):
    a = ctx.node("A", script=ctx.script("main.lua", APPLY_LUA.replace("@DB@", db)))
    a.wait_line(r"^done$", 60)
    lines = [l for l in a.lines() if not l.startswith("#")]
    check(lines == APPLY_OUT, "apply, erase and near: %r" % lines)


@timeout(60)
def test_odbc_sqlite_apply_erase_near(ctx):
    run_apply(ctx, '"%s"' % sqlite(ctx))


@timeout(120)
def test_odbc_postgres_apply_erase_near(ctx):
    port, _, _ = start_pg(ctx)
    run_apply(ctx, pg_conn(port))


PINGER_LUA = r'''
stage.addtask(50, function () stage.signal("main:ping") return 50 end)
'''

SLOW_LUA = r'''
local pinged = 0
stage.waitfor("ping", function () pinged = pinged + 1 end)
odbc.new(@DB@, function (adp)
  local before = pinged
  local ok, err = pcall(adp.execute, @SLOW@)
  print("slow", ok, err)
  print("pings served while it ran", pinged - before >= 5)
  adp.execute("CREATE TABLE n (v INTEGER)")
  adp.begin()
  for i = 1, 25 do adp.execute("INSERT INTO n VALUES (?)", i) end
  adp.commit()
  local rs, sizes = adp.execute("SELECT v FROM n ORDER BY v"), {}
  for b in rs.next do sizes[#sizes + 1] = #b end
  print("batches", table.concat(sizes, ","))
  local all = adp.execute("SELECT v FROM n ORDER BY v").fetch({"$"})
  print("fetch all", all[0].v, all[24].v)
  print("after the timeout", adp.execute("SELECT 3 AS x").fetch().x)
end)
'''


def run_slow(ctx, db, slow, why):
    drv = ctx.script("main.lua", SLOW_LUA.replace("@DB@", db).replace("@SLOW@", slow))
    a = ctx.node("A", script=drv, sets={"odbc_batch": 10},
                 actors=[("p", ctx.script("p.lua", PINGER_LUA), 1)])
    line = a.wait_line(r"^slow\t", 30)[0]
    check(line.startswith("slow\tfalse\todbc: timeout: the statement ran past its limit") and
          why in line, "the statement past its timeout is cancelled: %r" % line)
    a.wait_line(r"^pings served while it ran\ttrue$", 10)
    a.wait_line(r"^batches\t10,10,5$", 10)
    a.wait_line(r"^fetch all\t1\t25$", 10)
    a.wait_line(r"^after the timeout\t3$", 10)
    a.wait_stderr(r"ran past its timeout: cancelled \(odbc_timeout\)")


@timeout(60)
def test_odbc_sqlite_timeout_batches_and_pings(ctx):
    db = '{DRIVER = "SQLite3", Database = "%s", [".executeTimeout"] = 700}' % ctx.path("t.db")
    slow = ('"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c '
            'WHERE x < 1000000000) SELECT count(*) AS n FROM c"')
    run_slow(ctx, db, slow, "interrupted")


@timeout(120)
def test_odbc_postgres_timeout_batches_and_pings(ctx):
    port, _, _ = start_pg(ctx)
    run_slow(ctx, pg_conn(port, ', [".executeTimeout"] = 700'), '"SELECT pg_sleep(20)"',
             "canceling statement")


EXHAUST_LUA = r'''
local DB = @DB@
local function run(tag, sql)
  odbc.new(DB, function (adp)
    local ok, r = pcall(function () return adp.execute(sql).fetch().n end)
    print(tag, ok, ok and r or r:match("odbc: .*"))
  end)
end
run("A", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) AS n FROM c")
stage.addtask(200, function () -- A holds the one connection by now
  run("B", "SELECT 2 AS n")
  run("C", "SELECT 3 AS n")
end)
'''


@timeout(60)
def test_odbc_pool_exhausted(ctx):
    drv = ctx.script("main.lua", EXHAUST_LUA.replace("@DB@", '"%s"' % sqlite(ctx)))
    a = ctx.node("A", script=drv, sets={"odbc_pool": 1, "odbc_queue": 1})
    c = a.wait_line(r"^C\t", 20)[0]
    check(c == "C\tfalse\todbc: the pool is exhausted: 1 connections busy and 1 statements "
          "waiting (odbc_pool, odbc_queue)", "the third statement is refused: %r" % c)
    a.wait_line(r"^A\ttrue\t3000000$", 30)
    a.wait_line(r"^B\ttrue\t2$", 10)
    a.wait_stderr(r"refused: limit hit: the pool is exhausted")


DOWN_LUA = r"""
local DB = @DB@
local function try()
  odbc.new(DB, function (adp)
    local ok, r = pcall(function () return adp.execute("SELECT 7 AS seven").fetch().seven end)
    print("T", ok, ok and r or r:match("odbc: [^:(]*"))
  end)
end
odbc.new(DB, function (adp)
  print("READY", adp.execute("SELECT 1 AS one").fetch().one)
  local ok, err = pcall(adp.execute, "SELECT pg_sleep(30)")
  print("midquery", ok, err:match("^odbc: [^(]*"))
  stage.addtask(300, function () try() return 300 end)
end)
"""


@timeout(150)
def test_odbc_postgres_down_and_back(ctx):
    import time
    port, start, stop = start_pg(ctx)
    drv = ctx.script("main.lua", DOWN_LUA.replace("@DB@", pg_conn(port)))
    a = ctx.node("A", script=drv, sets={"odbc_pool": 1, "odbc_login_timeout": 2000})
    a.wait_line(r"^READY\t1$", 20)
    time.sleep(1)  # the pg_sleep is running
    stop()
    m = a.wait_line(r"^midquery\t", 20)[0]
    check(m == "midquery\tfalse\todbc: the database connection was lost ",
          "a database stopped mid-query gives a clear error: %r" % m)
    a.wait_stderr(r"the database connection was lost")
    t = a.wait_line(r"^T\t", 20)[0]
    check(t == "T\tfalse\todbc: cannot connect", "while it is down: %r" % t)
    start()
    a.wait_line(r"^T\ttrue\t7$", 30)  # the pool reconnected


@timeout(90)
def test_odbc_sigterm_with_statements_in_flight(ctx):
    # statements still running do not hold up a stop: SIGTERM cancels them, the node exits
    # 0 and (under the sanitizers) nothing leaks
    port, _, _ = start_pg(ctx)
    drv = ctx.script("main.lua", r'''
local n = 0
for i = 1, 4 do
  odbc.new(@DB@, function (adp)
    n = n + 1
    if n == 4 then print("in flight", n) end
    adp.execute("SELECT pg_sleep(60)")
    print("never")
  end)
end
'''.replace("@DB@", pg_conn(port)))
    a = ctx.node("A", script=drv, sets={"odbc_timeout": 120000})
    a.wait_line(r"^in flight\t4$")
    a.wait_stderr(r"serving on")
    import time
    time.sleep(1)
    rc = a.term(30)
    check(rc == 0, "exit status 0 after SIGTERM, got %s" % rc)
    from harness import sanitizer_report
    report = sanitizer_report(a.err_path)
    check(not report, "no sanitizer report: %s" % report)


PREPARED_LUA = r'''
local DB = @DB@
odbc.new(DB, function (adp)
  adp.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v VARCHAR(20))")
  local ins = "INSERT INTO kv (k, v) VALUES (?, ?)"
  local get = "SELECT v FROM kv WHERE k = ?"
  for i = 1, 5 do adp.execute(ins, i, "v" .. i) end
  -- two texts through one kept statement (odbc_prepared=1): each replaces the other
  local got = {}
  for i = 1, 5 do
    got[#got + 1] = adp.execute(get, i).fetch().v
    adp.execute("UPDATE kv SET v = ? WHERE k = ?", "w" .. i, i)
  end
  print("alternating", table.concat(got, " "))
  -- a kept statement that fails (a duplicate key) is dropped, and the next run prepares again
  local ok, err = pcall(adp.execute, ins, 1, "dup")
  print("duplicate", ok, err:match("^odbc: the statement failed") ~= nil)
  adp.execute(ins, 6, "v6")
  print("after", adp.execute(get, 6).fetch().v, adp.execute(get, 1).fetch().v)
  -- the same text with other parameter types
  print("types", adp.execute(get, "2").fetch().v)
  print("done")
end)
'''


def run_prepared(ctx, db):
    a = ctx.node("A", sets={"odbc_prepared": 1},
                 script=ctx.script("main.lua", PREPARED_LUA.replace("@DB@", db)))
    a.wait_line(r"^done$", 30)
    lines = [l for l in a.lines() if not l.startswith("#")]
    want = ["alternating\tv1 v2 v3 v4 v5", "duplicate\tfalse\ttrue", "after\tv6\tw1", "types\tw2",
            "done"]
    check(lines[:len(want)] == want, "prepared statements: %r" % lines)


@timeout(60)
def test_odbc_sqlite_prepared_statements(ctx):
    """Statements with parameters are kept prepared per connection (odbc_prepared): a text
    that comes back runs the kept statement, a full cache replaces its oldest, and a kept
    statement that fails is dropped and prepared again."""
    run_prepared(ctx, '"%s"' % sqlite(ctx))


@timeout(120)
def test_odbc_postgres_prepared_statements(ctx):
    port, _, _ = start_pg(ctx)
    run_prepared(ctx, pg_conn(port))
