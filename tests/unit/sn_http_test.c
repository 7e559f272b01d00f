/* sn_http: every route over a real socket, 404/405/500, a silent client, the limits, destroy. */
#include "sn_error.h"
#include "sn_http.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char STATUS_JSON[] = "{\"node\":\"n1\",\"members\":[],\"nodes\":{}}";
static const char METRICS_TEXT[] = "# HELP x_total x\n# TYPE x_total counter\nx_total 1\n";

static int dup_body(const char *text, char **body, size_t *len)
{
    *body = strdup(text);
    if (!*body) return SN_ENOMEM;
    *len = strlen(text);
    return SN_OK;
}

static int render_metrics(void *ud, char **body, size_t *len)
{
    int *calls = ud;
    (*calls)++;
    return dup_body(METRICS_TEXT, body, len);
}

static int render_status(void *ud, char **body, size_t *len)
{
    return dup_body(STATUS_JSON, body, len);
}

static int render_fail(void *ud, char **body, size_t *len)
{
    return SN_ENOMEM;
}

static int connect_to(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends a raw request and reads the response to EOF; caller frees. */
static char *exchange(unsigned port, const char *request)
{
    int fd = connect_to(port);
    size_t rl = strlen(request);
    cr_assert_eq(send(fd, request, rl, MSG_NOSIGNAL), (ssize_t)rl);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        cr_assert(n >= 0, "read timed out or failed");
        if (n == 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static char *get(unsigned port, const char *method, const char *path)
{
    char req[256];
    snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: test\r\n\r\n", method, path);
    return exchange(port, req);
}

static int status_of(const char *resp)
{
    int code = 0;
    cr_assert_eq(sscanf(resp, "HTTP/1.%*d %d", &code), 1, "not HTTP: %s", resp);
    return code;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    cr_assert_not_null(b);
    return b + 4;
}

static int has_header(const char *resp, const char *header)
{
    const char *end = strstr(resp, "\r\n\r\n");
    const char *h = strstr(resp, header);
    return h && h < end;
}

static sn_http *start(sn_http_handlers *h)
{
    int err = -1;
    sn_http *srv = sn_http_new("127.0.0.1:0", h, NULL, &err);
    cr_assert_not_null(srv, "start failed: %s", sn_strerror(err));
    cr_assert_eq(err, SN_OK);
    cr_assert_gt(sn_http_port(srv), 0);
    return srv;
}

Test(sn_http, routes)
{
    int calls = 0;
    sn_http_handlers h = {.metrics = render_metrics, .status = render_status, .ud = &calls};
    sn_http *srv = start(&h);
    unsigned port = sn_http_port(srv);

    char *r = get(port, "GET", "/metrics");
    cr_assert_eq(status_of(r), 200);
    cr_assert(has_header(r, "Content-Type: text/plain; version=0.0.4"), "%s", r);
    cr_assert_str_eq(body_of(r), METRICS_TEXT);
    cr_assert_eq(calls, 1);
    free(r);

    r = get(port, "GET", "/status.json");
    cr_assert_eq(status_of(r), 200);
    cr_assert(has_header(r, "Content-Type: application/json"), "%s", r);
    cr_assert_str_eq(body_of(r), STATUS_JSON);
    free(r);

    r = get(port, "GET", "/");
    cr_assert_eq(status_of(r), 200);
    cr_assert(has_header(r, "Content-Type: text/html"), "%s", r);
    cr_assert(has_header(r, "Content-Security-Policy: default-src 'none'"));
    cr_assert_eq(strlen(body_of(r)), sn_dashboard_html_len);
    cr_assert_str_eq(body_of(r), sn_dashboard_html);
    cr_assert_not_null(strstr(body_of(r), "fetch(\"status.json\""), "the page polls the status");
    free(r);

    r = get(port, "HEAD", "/metrics");
    cr_assert_eq(status_of(r), 200);
    cr_assert_str_eq(body_of(r), "");
    free(r);

    r = get(port, "GET", "/nope");
    cr_assert_eq(status_of(r), 404);
    free(r);
    r = get(port, "GET", "/metrics/x");
    cr_assert_eq(status_of(r), 404);
    free(r);

    r = get(port, "POST", "/metrics");
    cr_assert_eq(status_of(r), 405);
    cr_assert(has_header(r, "Allow: GET, HEAD"));
    free(r);
    r = exchange(port, "PUT /status.json HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
    cr_assert_eq(status_of(r), 405);
    free(r);

    sn_http_destroy(&srv);
    cr_assert_null(srv);
    sn_http_destroy(&srv);
}

Test(sn_http, handler_failures_and_size_cap)
{
    int calls = 0;
    sn_http_handlers h = {
        .metrics = render_metrics, .status = render_fail, .ud = &calls, .max_response = 16};
    sn_http *srv = start(&h);
    char *r = get(sn_http_port(srv), "GET", "/status.json");
    cr_assert_eq(status_of(r), 500, "a failing handler answers 500");
    free(r);
    r = get(sn_http_port(srv), "GET", "/metrics");
    cr_assert_eq(status_of(r), 500, "a body over the cap answers 500");
    free(r);
    sn_http_destroy(&srv);

    sn_http_handlers none = {0};
    srv = start(&none);
    r = get(sn_http_port(srv), "GET", "/metrics");
    cr_assert_eq(status_of(r), 404, "no handler, no route");
    free(r);
    sn_http_destroy(&srv);
}

Test(sn_http, silent_client_blocks_no_one)
{
    int calls = 0;
    sn_http_handlers h = {
        .metrics = render_metrics, .status = render_status, .ud = &calls, .timeout_s = 1};
    sn_http *srv = start(&h);
    unsigned port = sn_http_port(srv);
    int silent = connect_to(port);
    int half = connect_to(port);
    send(half, "GET /metr", 9, MSG_NOSIGNAL); /* and never the rest */

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 5; i++) {
        char *r = get(port, "GET", "/status.json");
        cr_assert_eq(status_of(r), 200);
        free(r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 2, "other clients were served at once");

    /* the idle timeout closes the silent ones */
    struct pollfd p = {.fd = silent, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the silent connection was closed");
    char c;
    cr_assert_leq(recv(silent, &c, 1, 0), 0);
    close(silent);
    close(half);
    sn_http_destroy(&srv);
}

Test(sn_http, connection_limit)
{
    int calls = 0;
    sn_http_handlers h = {.metrics = render_metrics, .ud = &calls, .max_connections = 2};
    sn_http *srv = start(&h);
    unsigned port = sn_http_port(srv);
    int a = connect_to(port), b = connect_to(port);
    usleep(100 * 1000);
    /* over the limit the server stops accepting: the kernel queues the third connection */
    int c = connect_to(port);
    const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    cr_assert_eq(send(c, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    struct pollfd p = {.fd = c, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 500), 0, "not served while two connections are open");
    cr_assert_eq(calls, 0);
    close(a);
    close(b);
    cr_assert_eq(poll(&p, 1, 3000), 1, "served once below the limit");
    char buf[256];
    ssize_t n = recv(c, buf, sizeof buf - 1, 0);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert_eq(status_of(buf), 200);
    close(c);
    sn_http_destroy(&srv);
}

Test(sn_http, bad_addresses)
{
    sn_http_handlers h = {0};
    int err = 0;
    cr_assert_null(sn_http_new("nonsense", &h, NULL, &err));
    cr_assert_eq(err, SN_EINVAL);
    cr_assert_null(sn_http_new("127.0.0.1:99999", &h, NULL, &err));
    cr_assert_eq(err, SN_EINVAL);
    sn_http *srv = start(&h);
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%u", sn_http_port(srv));
    cr_assert_null(sn_http_new(hp, &h, NULL, &err), "the port is taken");
    cr_assert_eq(err, SN_EIO);
    sn_http_destroy(&srv);

    char host[64];
    unsigned port;
    cr_assert_eq(sn_http_split_hostport("[::1]:8080", host, sizeof host, &port), SN_OK);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 8080);
    cr_assert_eq(sn_http_split_hostport("::1:8080", host, sizeof host, &port), SN_EINVAL);
    cr_assert_eq(sn_http_split_hostport("host:", host, sizeof host, &port), SN_EINVAL);
}

/* issue 12: libmicrohttpd's timeout is for idleness: a client sending a header line now and
 * then kept its slot forever (70 of them kept /metrics unreachable). Each request has a
 * deadline, however actively the client trickles. */
Test(sn_http, trickling_client_is_cut_at_the_request_deadline)
{
    int calls = 0;
    sn_http_handlers h = {.metrics = render_metrics, .ud = &calls, .request_s = 1, .timeout_s = 30};
    sn_http *srv = start(&h);
    int slow = connect_to(sn_http_port(srv));
    send(slow, "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int closed = 0;
    for (int i = 0; i < 40 && !closed; i++) { /* a header line every 100 ms, for 4 s */
        usleep(100 * 1000);
        if (send(slow, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) < 0) {
            closed = 1;
            break;
        }
        struct pollfd p = {.fd = slow, .events = POLLIN};
        char c;
        closed = poll(&p, 1, 0) == 1 && recv(slow, &c, 1, MSG_DONTWAIT) <= 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert(closed, "the trickling client was not cut");
    cr_assert(took >= 0.9 && took < 2.5, "cut after %.2f s (deadline 1 s)", took);
    cr_assert_eq(calls, 0);
    close(slow);
    char *r = get(sn_http_port(srv), "GET", "/metrics");
    cr_assert_eq(status_of(r), 200, "the server goes on");
    free(r);
    sn_http_destroy(&srv);
}

/* A folder for --http-root, with a secret beside it and a link out of it. */
static void make_root(char *dir, size_t cap)
{
    char tmpl[] = "/tmp/sn_http_root_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(dir, cap, "%s/www", tmpl);
    cr_assert_eq(mkdir(dir, 0700), 0);
    char p[512];
    FILE *f;
    snprintf(p, sizeof p, "%s/index.html", dir);
    cr_assert_not_null(f = fopen(p, "w"));
    fputs("<p>chat</p>", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/app.js", dir);
    cr_assert_not_null(f = fopen(p, "w"));
    fputs("let x = 1;", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/.hidden", dir);
    cr_assert_not_null(f = fopen(p, "w"));
    fputs("hidden", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/secret.txt", tmpl);
    cr_assert_not_null(f = fopen(p, "w"));
    fputs("SECRET", f);
    fclose(f);
    char link[512];
    snprintf(link, sizeof link, "%s/out.txt", dir);
    cr_assert_eq(symlink(p, link), 0);
    snprintf(p, sizeof p, "%s/sub", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
}

Test(sn_http, static_root_and_traversal)
{
    char dir[256];
    make_root(dir, sizeof dir);
    sn_http_handlers h = {.root = dir};
    sn_http *srv = start(&h);
    unsigned port = sn_http_port(srv);

    char *r = get(port, "GET", "/app/");
    cr_assert_eq(status_of(r), 200, "%s", r);
    cr_assert(has_header(r, "Content-Type: text/html"), "%s", r);
    cr_assert(has_header(r, "Content-Security-Policy: default-src 'self'"), "%s", r);
    cr_assert_str_eq(body_of(r), "<p>chat</p>");
    free(r);
    r = get(port, "GET", "/app/app.js");
    cr_assert_eq(status_of(r), 200, "%s", r);
    cr_assert(has_header(r, "Content-Type: text/javascript"), "%s", r);
    cr_assert_str_eq(body_of(r), "let x = 1;");
    free(r);
    r = get(port, "HEAD", "/app/index.html");
    cr_assert_eq(status_of(r), 200);
    cr_assert_str_eq(body_of(r), "");
    free(r);
    r = get(port, "GET", "/app");
    cr_assert_eq(status_of(r), 301);
    cr_assert(has_header(r, "Location: /app/"), "%s", r);
    free(r);
    r = get(port, "GET", "/app/nope.html");
    cr_assert_eq(status_of(r), 404);
    free(r);
    r = get(port, "GET", "/app/sub");
    cr_assert_eq(status_of(r), 404, "a folder is no file");
    free(r);

    /* every way out of the root is refused, and nothing of the secret leaks */
    static const char *const out[] = {
        "/app/../secret.txt",   "/app/%2e%2e/secret.txt", "/app/sub/../../secret.txt",
        "/app/sub/%2E%2E/%2e%2e/secret.txt", "/app/..%2fsecret.txt", "/app/.hidden",
        "/app/out.txt",         "/app//etc/passwd",       "/app/..\\secret.txt",
        "/app/./index.html",    "/app/sub/",              "/app/%00../secret.txt"};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        r = get(port, "GET", out[i]);
        int code = status_of(r);
        cr_assert(code == 403 || code == 404 || code == 400, "%s answered %d", out[i], code);
        cr_assert_null(strstr(r, "SECRET"), "%s leaked the secret", out[i]);
        cr_assert_null(strstr(body_of(r), "hidden"), "%s served a hidden file", out[i]);
        free(r);
    }
    r = get(port, "GET", "/app/../secret.txt");
    cr_assert_eq(status_of(r), 403, "%s", r);
    free(r);
    r = get(port, "GET", "/app/out.txt");
    cr_assert_eq(status_of(r), 403, "a link out of the root: %s", r);
    free(r);
    sn_http_destroy(&srv);

    sn_http_handlers none = {0};
    srv = start(&none);
    r = get(sn_http_port(srv), "GET", "/app/");
    cr_assert_eq(status_of(r), 404, "no root, no files");
    free(r);
    sn_http_destroy(&srv);

    int err = 0;
    sn_http_handlers bad = {.root = "/nonexistent/folder"};
    cr_assert_null(sn_http_new("127.0.0.1:0", &bad, NULL, &err));
    cr_assert_eq(err, SN_ENOENT);

    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
    cr_assert_eq(system(rm), 0);
}

Test(sn_http, path_ok)
{
    cr_assert(sn_http_path_ok("index.html"));
    cr_assert(sn_http_path_ok("a/b.js"));
    cr_assert(sn_http_path_ok("a..b"));
    static const char *const bad[] = {"", "/etc/passwd", "..", "../x", "a/../b", "a/..", ".",
                                      "./a", "a//b", "a/", ".git/config", "a\\b", "a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!sn_http_path_ok(bad[i]), "'%s' passed", bad[i]);
    cr_assert(!sn_http_path_ok(NULL));
}
