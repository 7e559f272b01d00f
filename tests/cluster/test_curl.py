"""The curl stage (docs/lua-api.md, "HTTP: the curl stage") against real HTTP servers the
tests start: Python's http.server (tests/cluster/curl_server.py), plain and TLS with a
self-signed certificate made here by openssl, and a socket that accepts and never answers.
Each script prints one tab-separated line per response; nothing is mocked."""
import os
import socket
import sys

from harness import check, timeout, wait_until, free_port

HERE = os.path.dirname(os.path.abspath(__file__))

# show(tag): a handler printing the response as one line:
# TAG status result message effective_url redirect_url type charset length content extra
SHOW_LUA = r'''
local BASE = "@BASE@"
local function show(tag)
  return function (r)
    local d = r.data
    local content = (d.content or "-"):gsub("\n", "|")
    print(table.concat({tag, r.status, d.result, d.message, r.effective_url or "-",
      r.redirect_url or "-", d.type or "-", d.charset or "-", d.length, content,
      r.extra and r.extra.k or "-"}, "\t"))
  end
end
'''


def start_server(ctx, tls=False):
    port = free_port()
    argv = [sys.executable, os.path.join(HERE, "curl_server.py"), str(port)]
    if tls:
        cert, key = ctx.path("cert.pem"), ctx.path("key.pem")
        r = ctx.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                     "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                     "-addext", "subjectAltName=IP:127.0.0.1"])
        check(r.returncode == 0, "openssl: %s" % r.stderr.decode()[-300:])
        argv += [cert, key]
    p = ctx.spawn(argv, "https" if tls else "http")
    wait_until(lambda: os.path.exists(ctx.path(p.log_name + ".out")) and
               "listening" in open(ctx.path(p.log_name + ".out")).read(), 10, "the HTTP server")
    return "%s://127.0.0.1:%d" % ("https" if tls else "http", port)


def script(ctx, base, body, name="main.lua"):
    return ctx.script(name, (SHOW_LUA + body).replace("@BASE@", base))


def fields(node, tag, timeout=15):
    return node.wait_line(r"^%s\t" % tag, timeout)[0].split("\t")


@timeout(60)
def test_curl_get_post_headers(ctx):
    base = start_server(ctx)
    drv = script(ctx, base, r'''
local CURL = require("curl")
stage.waitfor("get", show("GET"))
print("queued", stage.signal("curl:get", {url = BASE .. "/text", extra = {k = "kept"}}))
stage.waitfor("post", show("POST"))
stage.signal("curl:post", {url = BASE .. "/echo", data = "raw body", header = {["X-Test"] = "h1"}})
CURL.New("curl", BASE .. "/echo", show("FORM")):setHeader("X-Test", "h2")
  :setPostField("a", "1 2&x"):extra({k = "e"}):commit()
stage.waitfor("rid", show("RID"))
stage.signal("curl:ignored=rid", BASE .. "/text")
stage.waitfor("nf", show("NF"))
stage.signal("curl:nf", BASE .. "/nope")
''')
    a = ctx.node("A", script=drv)
    a.wait_line(r"^queued\t1$")
    g = fields(a, "GET")
    check(g[1:4] == ["200", "0", "No error"], "GET status, result, message: %r" % g)
    check(g[6:11] == ["text/plain", "utf-8", "10", "hello curl", "kept"],
          "GET type, charset, length, content, extra: %r" % g)
    p = fields(a, "POST")
    check(p[1] == "200" and p[9] == "POST|h1|raw body", "POST with a raw body and a header: %r" % p)
    f = fields(a, "FORM")
    check(f[1] == "200" and f[9] == "POST|h2|a=1%202%26x" and f[10] == "e",
          "CURL.New: header, form field escaped, extra: %r" % f)
    r = fields(a, "RID")
    check(r[1] == "200" and r[9] == "hello curl", "curl:ID=RID answers RID: %r" % r)
    n = fields(a, "NF")
    check(n[1] == "404" and n[2] == "0" and n[9] == "no such path",
          "a 404 is a complete response (result 0): %r" % n)


@timeout(60)
def test_curl_redirect_limit(ctx):
    base = start_server(ctx)
    drv = script(ctx, base, r'''
for _, t in ipairs({"R2", "R9", "R4", "R0"}) do stage.waitfor(t, show(t)) end
stage.signal("curl:R2", BASE .. "/redirect/2")
stage.signal("curl:R9", BASE .. "/redirect/9")
stage.signal("curl:R4", {url = BASE .. "/redirect/4", max_redirects = 50})
stage.signal("curl:R0", {url = BASE .. "/redirect/1", max_redirects = 0})
''')
    a = ctx.node("A", script=drv, sets={"curl_redirects": 3})
    r2 = fields(a, "R2")
    check(r2[1] == "200" and r2[4] == base + "/text" and r2[9] == "hello curl",
          "2 redirects followed to /text: %r" % r2)
    r9 = fields(a, "R9")
    check(r9[2] == "47" and r9[3] == "more than 3 redirects", "past curl_redirects: %r" % r9)
    r4 = fields(a, "R4")
    check(r4[2] == "47" and r4[3] == "more than 3 redirects",
          "a request cannot raise the node's limit: %r" % r4)
    r0 = fields(a, "R0")
    check(r0[1] == "302" and r0[2] == "0" and r0[5] == base + "/text",
          "max_redirects = 0: the 302 itself, with redirect_url: %r" % r0)
    a.wait_stderr(r"limit hit: more than 3 redirects \(curl_redirects")


@timeout(60)
def test_curl_timeout_and_requests_limit(ctx):
    # a listening socket nobody accepts on: the kernel completes the handshake, then silence
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    ctx.add_cleanup(silent.close)
    base = "http://127.0.0.1:%d" % silent.getsockname()[1]
    drv = script(ctx, base, r'''
local ticks, pings = 0, 0
stage.waitfor("ping", function () pings = pings + 1 end)
stage.addtask(20, function ()
  ticks = ticks + 1
  stage.signal("ping")
  if ticks < 25 then return 20 end
end)
local function late(tag)
  local f = show(tag)
  return function (r) print(tag .. "_SERVED", ticks >= 10 and pings >= 10) f(r) end
end
stage.waitfor("T1", late("T1")) stage.waitfor("T2", late("T2")) stage.waitfor("T3", late("T3"))
stage.signal("curl:T1", BASE .. "/never")
stage.signal("curl:T2", {url = BASE .. "/never", timeout = 300})
stage.signal("curl:T3", {url = BASE .. "/never", timeout = 99999999})
print("fourth", stage.signal("curl:T4", BASE .. "/never"))
''')
    a = ctx.node("A", script=drv, sets={"curl_timeout": 800, "curl_requests": 3})
    four = a.wait_line(r"^fourth\t")[0]
    check(four == "fourth\t0\tcurl: too many requests in flight (curl_requests = 3)",
          "the fourth request in flight is refused: %r" % four)
    a.wait_stderr(r"refused: limit hit: 3 requests in flight \(curl_requests\)")
    t2 = fields(a, "T2")
    check(t2[2] == "28" and t2[3] == "timeout: no complete answer within 300 ms",
          "the request's own timeout: %r" % t2)
    for tag in ("T1", "T3"):
        t = fields(a, tag)
        check(t[2] == "28" and t[3] == "timeout: no complete answer within 800 ms",
              "curl_timeout, also over a larger request timeout: %r" % t)
        served = a.wait_line(r"^%s_SERVED\t" % tag)[0]
        check(served.endswith("true"), "the actor kept serving timers and messages while "
              "%s was in flight: %r" % (tag, served))
    # the first hit is logged; the next ones within a second are counted in the next record
    a.wait_stderr(r"limit hit: timeout of 300 ms \(curl_timeout, or the request's timeout\)")


@timeout(60)
def test_curl_body_limit(ctx):
    base = start_server(ctx)
    drv = script(ctx, base, r'''
for _, t in ipairs({"OK", "OVER", "CHUNKED", "OWN"}) do stage.waitfor(t, show(t)) end
stage.signal("curl:OK", BASE .. "/big/1000")
stage.signal("curl:OVER", BASE .. "/big/1001")
stage.signal("curl:CHUNKED", BASE .. "/chunked/5000")
stage.signal("curl:OWN", {url = BASE .. "/big/900", max_body = 500})
''')
    a = ctx.node("A", script=drv, sets={"curl_body_max": 1000})
    ok = fields(a, "OK")
    check(ok[1] == "200" and ok[8] == "1000" and ok[9] == "x" * 1000, "at the limit: %r" % ok[:9])
    for tag, limit in (("OVER", 1000), ("CHUNKED", 1000), ("OWN", 500)):
        f = fields(a, tag)
        check(f[2] == "63" and f[3] == "response body over the limit of %d bytes" % limit and
              f[9] == "-", "%s: over the body limit, no content: %r" % (tag, f))
    a.wait_stderr(r"limit hit: response body over (1000|500) bytes \(curl_body_max")


@timeout(60)
def test_curl_tls_verification(ctx):
    base = start_server(ctx, tls=True)
    drv = script(ctx, base, r'''
stage.waitfor("NOCA", show("NOCA"))
stage.waitfor("CA", show("CA"))
stage.signal("curl:NOCA", BASE .. "/text")
stage.signal("curl:CA", {url = BASE .. "/text", ca = "@CA@"})
'''.replace("@CA@", ctx.path("cert.pem")))
    a = ctx.node("A", script=drv)
    no = fields(a, "NOCA")
    check(no[1] == "0" and no[2] == "60" and "certificate" in no[3],
          "a self-signed server is refused by default: %r" % no)
    yes = fields(a, "CA")
    check(yes[1] == "200" and yes[9] == "hello curl", "accepted with the script's CA: %r" % yes)


@timeout(90)
def test_curl_concurrent_actors_keep_serving(ctx):
    base = start_server(ctx)
    worker = script(ctx, base, r'''
stage.waitfor("start", function ()
  for i = 1, 5 do stage.signal("curl:gate", {url = BASE .. "/gate"}) end
end)
stage.waitfor("gate", function (r) stage.signal("main:done", r.status, r.data.content) end)
stage.waitfor("ping", function () return true end)
''', "worker.lua")
    drv = script(ctx, base, r'''
local pongs, done = 0, 0
stage.waitfor("done", function (status, content)
  done = done + 1
  print("DONE", status, content)
end)
stage.waitfor("pong", function ()
  pongs = pongs + 1
  if pongs == 40 then
    print("PONGS", pongs, "responses so far", done)
    stage.signal("curl:opened", BASE .. "/open/20")
  end
end)
stage.waitfor("opened", show("OPEN"))
when_ready("w", {"A"}, function ()
  for i = 1, 4 do stage.signal("=w:start") end
  for i = 1, 40 do stage.signal("=w:ping=pong") end
end)
''')
    a = ctx.node("A", script=drv, actors=[("w", worker, 4)], threads=4)
    pongs = a.wait_line(r"^PONGS\t", 30)[0]
    check(pongs == "PONGS\t40\tresponses so far\t0",
          "every actor answered its 10 pings while its 5 requests waited: %r" % pongs)
    done = a.wait_line(r"^DONE\t", 30, count=20)
    check(all(d == "DONE\t200\t20" for d in done),
          "20 requests from 4 actors were at the server at once: %r" % done[:3])


@timeout(60)
def test_curl_sigterm_with_requests_in_flight(ctx):
    # requests that will never be answered do not hold up a stop: SIGTERM ends them, the
    # node exits 0, and (under the sanitizers) nothing leaks
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    ctx.add_cleanup(silent.close)
    base = "http://127.0.0.1:%d" % silent.getsockname()[1]
    drv = script(ctx, base, r'''
stage.waitfor("T", show("T"))
local n = 0
for i = 1, 10 do n = n + stage.signal("curl:T", BASE .. "/never") end
print("in flight", n)
''')
    a = ctx.node("A", script=drv, sets={"curl_timeout": 60000})
    a.wait_line(r"^in flight\t10$")
    a.wait_stderr(r"serving on")
    rc = a.term(20)
    check(rc == 0, "exit status 0 after SIGTERM, got %s" % rc)
    from harness import sanitizer_report
    report = sanitizer_report(a.err_path)
    check(not report, "no sanitizer report: %s" % report)
