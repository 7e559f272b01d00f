/* The broker (docs/broker.md) against a plain C libev echo server with no Lua (echo_plain,
 * built beside this program), each a process of its own, driven by the same C load client:
 *  - echo messages/s with 100 connections, each keeping DEPTH messages in flight (pipelined):
 *    tcp://...?packet through the broker, an actor and socket.commit; and over ws://;
 *  - memory per idle connection: RSS growth of the server process with N idle connections,
 *    divided by N (RSS does not count the kernel's socket buffers, so neither do we);
 *  - connections accepted per second: connect, wait for the server's one-byte greeting
 *    (the broker's comes from the actor's accept callback), close; CONNS_ACC at a time.
 * Rates are the median and range of REPS runs, with the server's CPU-seconds (user+system,
 * all its threads) beside the wall time. Every child is killed on exit; every wait is bounded.
 *
 * In an echo run both servers are up at once, and the load moves between them in SLICES
 * slices each, taking turns (node, plain, node, ...): each slice starts DEPTH messages on
 * every connection, counts echoes after a warm-up, then drains. A phase of the machine (the
 * plain server's rate moved between 1.0 and 1.85 million/s from one second to the next)
 * thus falls on both sides of a run alike; with the two measured one after the other, a
 * run's ratio swung from 0.36 to 0.85 for the same build. SN_BENCH_SLICES=1 in the
 * environment prints each slice's rate and CPU to stderr. */
#define _GNU_SOURCE
#include "bench_scripts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

enum {
    REPS = 3,
    CONNS = 100,      /* echo: concurrent connections */
    DEPTH = 8,        /* echo: messages in flight per connection */
    PAYLOAD = 64,     /* echo: bytes per message */
    IDLE_N = 10000,   /* memory: idle connections */
    CONNS_ACC = 32,   /* accepts: connects in flight */
    THREADS = 1,      /* the node's workers: the node's loop thread + 1 on the 2 cores */
    SLICES = 8,       /* echo: slices per server in a run (see the top) */
};
static const double ECHO_SECONDS = 2.0, ACC_SECONDS = 1.5;

static char binary[4096], plain[4096];
static const char *serving = "?"; /* the server under test, for die()'s message */
static int keep_logs;              /* die() keeps tmpdir: its message points there */
static char tmpdir[] = "/tmp/sn-bench-broker-XXXXXX";
static pid_t main_pid, kids[2] = {-1, -1}; /* the servers running: node, plain */

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_broker: %s server: ", serving);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (server logs in %s)\n", tmpdir);
    keep_logs = 1;
    va_end(ap);
    for (int i = 0; i < 2; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    exit(1);
}

static void on_signal(int sig)
{
    for (int i = 0; i < 2; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    _exit(128 + sig);
}

static void stop_children(void)
{
    for (int i = 0; i < 2; i++) {
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
        }
        kids[i] = -1;
    }
}

static void at_exit(void)
{
    if (getpid() != main_pid)
        return;
    stop_children();
    if (keep_logs)
        return;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_broker: could not remove %s\n", tmpdir);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) < 0)
        die("free_port: %s", strerror(errno));
    close(s);
    return ntohs(a.sin_port);
}

/* Starts argv (stderr to tmpdir/log.err) and waits for the line "ready" on its stdout. */
static pid_t spawn(const char *log, char *const argv[])
{
    int slot = kids[0] > 0;
    if (kids[slot] > 0)
        die("a third server");
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    char errpath[512];
    snprintf(errpath, sizeof errpath, "%s/%s.err", tmpdir, log);
    fflush(NULL);
    pid_t child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
    if (child == 0) {
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (e >= 0)
            dup2(e, 2);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    kids[slot] = child;
    close(pfd[1]);
    char buf[4096];
    size_t len = 0;
    double deadline = bench_now() + 20;
    while (!memmem(buf, len, "ready\n", 6)) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int left = (int)((deadline - bench_now()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            die("%s did not say ready in 20 s", log);
        ssize_t n = read(pfd[0], buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            die("%s exited before it was ready", log);
        len += (size_t)n;
        if (len >= sizeof buf - 1)
            len = 0;
    }
    close(pfd[0]); /* the node's later prints would block a full pipe: none are made */
    return child;
}

/* A server's CPU-seconds (user + system, every thread) so far. */
static double child_cpu(pid_t child)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)child);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof buf, f))
        die("cannot read %s", path);
    fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after the ')': state(3) ... utime(14) stime(15) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        die("cannot parse %s", path);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A line of /proc/PID/status ("VmRSS", "Threads") as a number (VmRSS: kB). */
static long child_status(pid_t child, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)child);
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read %s", path);
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':')
            v = atol(line + kl + 1);
    fclose(f);
    return v;
}

static int connect_to(int port, int nonblock)
{
    int s = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0)
        die("socket: %s", strerror(errno));
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        die("connect to %d: %s", port, strerror(errno));
    return s;
}

/* ---- the echo load client --------------------------------------------------------------- */

typedef struct lconn {
    int fd;
    unsigned char in[65536];
    size_t in_len;
} lconn;

static size_t msg_size(int ws) { return ws ? 2 + 4 + PAYLOAD : 4 + PAYLOAD; }

/* One message as the client sends it: a frame (packet) or a masked binary frame (ws). */
static void msg_make(int ws, unsigned char *m)
{
    if (ws) {
        static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
        m[0] = 0x82;
        m[1] = 0x80 | PAYLOAD;
        memcpy(m + 2, mask, 4);
        for (int i = 0; i < PAYLOAD; i++)
            m[6 + i] = (unsigned char)('a' + i % 26) ^ mask[i % 4];
    } else {
        uint32_t len = 4 + PAYLOAD;
        m[0] = (unsigned char)len, m[1] = (unsigned char)(len >> 8);
        m[2] = (unsigned char)(len >> 16), m[3] = (unsigned char)(len >> 24);
        for (int i = 0; i < PAYLOAD; i++)
            m[4 + i] = (unsigned char)('a' + i % 26);
    }
}

static void send_all(int fd, const void *p, size_t n)
{
    const unsigned char *q = p;
    while (n) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            die("send: %s", w < 0 ? strerror(errno) : "0");
        q += w, n -= (size_t)w;
    }
}

/* The WebSocket opening handshake (blocking); the answer must be 101. */
static void ws_open(int fd, int port)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: "
                     "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                     "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", port);
    send_all(fd, req, (size_t)n);
    char resp[1024];
    size_t len = 0;
    while (!memmem(resp, len, "\r\n\r\n", 4)) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 5000) <= 0)
            die("no WebSocket upgrade answer in 5 s");
        ssize_t r = recv(fd, resp + len, sizeof resp - len, 0); /* the server sends nothing
                                                                     more before our frames */
        if (r <= 0 || (len += (size_t)r) >= sizeof resp)
            die("the WebSocket upgrade failed");
    }
    if (strncmp(resp, "HTTP/1.1 101", 12))
        die("the WebSocket upgrade was answered %.20s", resp);
}

/* One server's side of an echo run: CONNS connections, open from the first slice on. */
typedef struct eside {
    pid_t pid;
    int ep, ws;
    lconn *cs;
    long count;         /* echoes counted, */
    double wall, cpu;   /* over this much wall time, in which the server used this much CPU */
} eside;

static void eside_open(eside *e, int port, int ws, pid_t pid)
{
    *e = (eside){.pid = pid, .ws = ws, .ep = epoll_create1(0), .cs = calloc(CONNS, sizeof *e->cs)};
    if (e->ep < 0 || !e->cs)
        die("echo run: %s", strerror(errno));
    for (int i = 0; i < CONNS; i++) {
        e->cs[i].fd = connect_to(port, 0);
        if (ws)
            ws_open(e->cs[i].fd, port);
        fcntl(e->cs[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(e->ep, EPOLL_CTL_ADD, e->cs[i].fd, &ev);
    }
}

static void eside_close(eside *e)
{
    for (int i = 0; i < CONNS; i++)
        close(e->cs[i].fd);
    close(e->ep);
    free(e->cs);
}

/* One slice: DEPTH messages in flight on every connection, each echo answered by a new
 * message; echoes are counted from warm seconds on, for secs seconds (and the server's CPU in
 * that time); then no new messages, until every one in flight is back. */
static void echo_slice(eside *e, double warm, double secs)
{
    int ws = e->ws;
    size_t ms = msg_size(ws), reply = ws ? 2 + PAYLOAD : 4 + PAYLOAD;
    unsigned char one[2 + 4 + PAYLOAD], burst[DEPTH * sizeof one];
    msg_make(ws, one);
    for (int d = 0; d < DEPTH; d++)
        memcpy(burst + (size_t)d * ms, one, ms);
    long flying = 0;
    for (int i = 0; i < CONNS; i++) {
        send_all(e->cs[i].fd, burst, (size_t)DEPTH * ms);
        flying += DEPTH;
    }
    unsigned char out[DEPTH * 4 * sizeof one];
    double start = bench_now(), t0 = 0, cpu0 = 0;
    long counted = 0;
    int phase = 0; /* 0 warming, 1 measuring, 2 draining */
    while (phase < 2 || flying > 0) {
        double now = bench_now();
        if (phase == 0 && now - start >= warm) {
            phase = 1;
            t0 = now;
            cpu0 = child_cpu(e->pid);
        }
        if (phase == 1 && now - t0 >= secs) {
            phase = 2;
            e->wall += now - t0;
            e->cpu += child_cpu(e->pid) - cpu0;
            e->count += counted;
            if (getenv("SN_BENCH_SLICES"))
                fprintf(stderr, "%s: %.0f echoes/s, %.2f cores\n", serving,
                        (double)counted / (now - t0), (child_cpu(e->pid) - cpu0) / (now - t0));
        }
        if (now - start > warm + secs + 30)
            die("the echo run did not end");
        struct epoll_event ev[64];
        int n = epoll_wait(e->ep, ev, 64, 1000);
        if (n == 0)
            die("no echo for 1 s (%s)", ws ? "ws" : "packet");
        for (int k = 0; k < n; k++) {
            lconn *c = &e->cs[ev[k].data.u32];
            ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                die("the server closed an echo connection");
            }
            c->in_len += (size_t)r;
            size_t whole = c->in_len / reply;
            if (!whole)
                continue;
            unsigned char h0 = ws ? 0x82 : (unsigned char)(4 + PAYLOAD);
            if (c->in[0] != h0)
                die("unexpected echo header 0x%02x", c->in[0]);
            memmove(c->in, c->in + whole * reply, c->in_len - whole * reply);
            c->in_len -= whole * reply;
            flying -= (long)whole;
            if (phase == 1)
                counted += (long)whole;
            if (phase == 2)
                continue;
            for (size_t s = 0; s < whole;) { /* as many new messages as came back */
                size_t b = whole - s < DEPTH * 4 ? whole - s : DEPTH * 4;
                for (size_t j = 0; j < b; j++)
                    memcpy(out + j * ms, one, ms);
                send_all(c->fd, out, b * ms);
                flying += (long)b;
                s += b;
            }
        }
    }
}

/* Messages echoed per second by each server: SLICES slices each, alternating (node, plain,
 * plain, node, ...), ECHO_SECONDS of counted echoes in all; b and p get their CPU-seconds. */
static void echo_pair(int bport, pid_t bpid, int pport, pid_t ppid, int ws, double *b,
                      double *bcpu, double *p, double *pcpu)
{
    eside s[2];
    eside_open(&s[0], bport, ws, bpid);
    eside_open(&s[1], pport, ws, ppid);
    for (int k = 0; k < 2 * SLICES; k++) {
        eside *e = &s[k % 2];
        serving = e == &s[0] ? "broker" : "plain";
        echo_slice(e, k < 2 ? 0.5 : 0.1, ECHO_SECONDS / SLICES);
    }
    for (int i = 0; i < 2; i++)
        if (s[i].count <= 0 || s[i].wall <= 0)
            die("no echo counted (%s)", i ? "plain" : "broker");
    *b = (double)s[0].count / s[0].wall, *bcpu = s[0].cpu * ECHO_SECONDS / s[0].wall;
    *p = (double)s[1].count / s[1].wall, *pcpu = s[1].cpu * ECHO_SECONDS / s[1].wall;
    eside_close(&s[0]);
    eside_close(&s[1]);
}

/* ---- accepts, memory -------------------------------------------------------------------- */

/* Connections per second: each connects, reads the greeting byte, closes; CONNS_ACC at once.
 * Client ports: each connection binds a source address of its own in 127.0.0.0/8 (the port
 * is picked at connect), so TIME_WAIT never runs the client out of ports. */
static double accept_run(int port, pid_t pid, double *cpu)
{
    int ep = epoll_create1(0), live[CONNS_ACC];
    long done = 0;
    unsigned src = 0;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < CONNS_ACC; i++)
        live[i] = -1;
    double t0 = bench_now(), cpu0 = child_cpu(pid);
    while (bench_now() - t0 < ACC_SECONDS) {
        for (int i = 0; i < CONNS_ACC; i++) {
            if (live[i] >= 0)
                continue;
            int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
            setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            struct sockaddr_in from = {.sin_family = AF_INET};
            from.sin_addr.s_addr = htonl(0x7f000000u | (2 + src++ % 250) << 8 | 1);
            if (bind(s, (struct sockaddr *)&from, sizeof from) < 0 ||
                (connect(s, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS))
                die("accept run: connect: %s", strerror(errno));
            struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
            live[i] = s;
        }
        struct epoll_event ev[64];
        int n = epoll_wait(ep, ev, 64, 2000);
        if (n == 0)
            die("no greeting for 2 s");
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].data.u32;
            char b;
            ssize_t r = recv(live[i], &b, 1, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r != 1 || b != '!')
                die("accept run: no greeting (%s)", r < 0 ? strerror(errno) : "closed");
            close(live[i]);
            live[i] = -1;
            done++;
        }
    }
    double wall = bench_now() - t0;
    *cpu = child_cpu(pid) - cpu0;
    for (int i = 0; i < CONNS_ACC; i++)
        if (live[i] >= 0)
            close(live[i]);
    close(ep);
    return (double)done / wall;
}

/* RSS growth (bytes) per idle connection with IDLE_N open; each is confirmed accepted by the
 * server's greeting byte, so the server holds all of them when RSS is read. */
static double idle_run(int port, pid_t pid)
{
    int *fds = malloc(IDLE_N * sizeof *fds);
    usleep(200000);
    long rss0 = child_status(pid, "VmRSS");
    int ep = epoll_create1(0);
    for (int i = 0; i < IDLE_N; i++) {
        fds[i] = connect_to(port, 1);
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    int greeted = 0;
    double deadline = bench_now() + 60;
    while (greeted < IDLE_N) {
        struct epoll_event ev[256];
        int n = epoll_wait(ep, ev, 256, 1000);
        if (bench_now() > deadline)
            die("only %d of %d idle connections accepted in 60 s", greeted, IDLE_N);
        for (int k = 0; k < n; k++) {
            char b;
            if (recv(ev[k].data.fd, &b, 1, 0) != 1 || b != '!')
                die("idle run: no greeting");
            epoll_ctl(ep, EPOLL_CTL_DEL, ev[k].data.fd, NULL);
            greeted++;
        }
    }
    usleep(1600000); /* the actor's side settles; the broker frees the buffers of a socket
                      * silent for 1 s (its sweep) */
    long rss1 = child_status(pid, "VmRSS");
    for (int i = 0; i < IDLE_N; i++)
        close(fds[i]);
    close(ep);
    free(fds);
    return (double)(rss1 - rss0) * 1024.0 / IDLE_N;
}

/* ---- servers ----------------------------------------------------------------------------- */

static const char *ECHO_LUA =
    "local P, kind = tonumber(process.args[1]), process.args[2]\n"
    "local uri = kind == 'ws' and ('ws://127.0.0.1:' .. P .. '/echo')\n"
    "  or kind == 'greet' and ('tcp://127.0.0.1:' .. P)\n"
    "  or ('tcp://127.0.0.1:' .. P .. '?packet=64k:64k')\n"
    "local function echo(s, data) s.commit(data, 'binary') end\n"
    "assert(broker.ready(uri, function (s)\n"
    "  if kind == 'greet' then s.commit('!') end\n"
    "  return echo\n"
    "end))\n"
    "print('ready')\n";

static char script_path[600];

static pid_t start_node(const char *kind, int port)
{
    char p[16], threads[8];
    snprintf(p, sizeof p, "%d", port);
    snprintf(threads, sizeof threads, "%d", THREADS);
    char *argv[] = {binary, "--threads", threads, "--log-level", "warn", "--set",
                    "broker_conns_listener=30000", script_path, p, (char *)kind, NULL};
    return spawn(kind, argv);
}

static pid_t start_plain(const char *kind, int port)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {plain, (char *)kind, p, NULL};
    return spawn("plain", argv);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct series {
    double v[REPS], cpu[REPS];
} series;

static double med(double *v)
{
    double s[REPS];
    memcpy(s, v, sizeof s);
    qsort(s, REPS, sizeof *s, cmp);
    return s[REPS / 2];
}

static double lo(double *v)
{
    double m = v[0];
    for (int i = 1; i < REPS; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double hi(double *v)
{
    double m = v[0];
    for (int i = 1; i < REPS; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* Runs kind (packet, ws, greet) against the broker and the plain server, both up, REPS
 * times, and prints the row. */
static void rate_row(const char *kind, const char *name, double target,
                     void (*run)(int, pid_t, int, pid_t, int, double *, double *, double *,
                                 double *))
{
    series b, p;
    long threads = 0;
    int ws = !strcmp(kind, "ws");
    for (int r = 0; r < REPS; r++) {
        int bport = free_port();
        serving = "broker";
        pid_t bpid = start_node(kind, bport);
        threads = child_status(bpid, "Threads");
        int pport = free_port();
        serving = "plain";
        pid_t ppid = start_plain(kind, pport);
        serving = "broker or plain";
        run(bport, bpid, pport, ppid, ws, &b.v[r], &b.cpu[r], &p.v[r], &p.cpu[r]);
        stop_children();
    }
    double mb = med(b.v), mp = med(p.v), ratio = mp > 0 ? mb / mp : 0;
    double rlo = lo(b.v) / hi(p.v), rhi = hi(b.v) / lo(p.v); /* the worst and best pairing */
    int met = 1;
    char runs[128] = "";
    for (int r = 0; r < REPS; r++) { /* met in every run, each against its own baseline */
        double rr = p.v[r] > 0 ? b.v[r] / p.v[r] : 0;
        met &= p.v[r] > 0 && rr >= target;
        snprintf(runs + strlen(runs), sizeof runs - strlen(runs), "%s%.2f", r ? ", " : "", rr);
    }
    double secs = !strcmp(kind, "greet") ? ACC_SECONDS : ECHO_SECONDS;
    printf("| broker | %s (node: %ld threads, %d worker) | %.4g /s (%.4g..%.4g); %.2f CPU-s "
           "per %.1f s wall | %.4g /s (%.4g..%.4g); %.2f CPU-s, 1 thread | %.2fx (%.2f..%.2f) "
           "| >= %.2fx | %s (each run: %s) |\n",
           name, threads, THREADS, mb, lo(b.v), hi(b.v), med(b.cpu), secs, mp, lo(p.v),
           hi(p.v), med(p.cpu), ratio, rlo, rhi, target, met ? "met" : "**missed**", runs);
    fflush(stdout);
}

/* Accepts per second: the node's run, then the plain server's (both up). */
static void accept_pair(int bport, pid_t bpid, int pport, pid_t ppid, int ws, double *b,
                        double *bcpu, double *p, double *pcpu)
{
    (void)ws;
    serving = "broker";
    *b = accept_run(bport, bpid, bcpu);
    serving = "plain";
    *p = accept_run(pport, ppid, pcpu);
}

/* Rows to run: all, or those named on the command line (packet, ws, greet, idle). */
static int row_wanted(int argc, char **argv, const char *row)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], row))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    main_pid = getpid();
    bench_binary(argv[0], binary, sizeof binary);
    snprintf(plain, sizeof plain, "%s", binary);
    snprintf(plain + strlen(plain) - strlen("stage-node"), sizeof plain, "echo_plain");
    if (access(binary, X_OK) || access(plain, X_OK))
        die("%s or %s is missing (build the bench target)", binary, plain);
    if (!mkdtemp(tmpdir))
        die("mkdtemp: %s", strerror(errno));
    atexit(at_exit);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGALRM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    alarm(600);
    struct rlimit rl; /* IDLE_N client sockets here; the servers raise their own */
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < IDLE_N + 256)
        die("RLIMIT_NOFILE's hard limit %lu is below the %d the idle test needs",
            (unsigned long)rl.rlim_max, IDLE_N + 256);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    snprintf(script_path, sizeof script_path, "%s/echo.lua", tmpdir);
    FILE *f = fopen(script_path, "w");
    if (!f || fputs(ECHO_LUA, f) < 0 || fclose(f))
        die("cannot write %s", script_path);

    if (row_wanted(argc, argv, "packet"))
        rate_row("packet", "echo msgs/s, tcp ?packet, 100 conns x 8 in flight, 64 B, actor + "
             "socket.commit vs plain libev", 0.5, echo_pair);
    if (row_wanted(argc, argv, "ws"))
        rate_row("ws", "echo msgs/s, ws:// binary, 100 conns x 8 in flight, 64 B, vs plain libev "
             "+ wslay", 0.5, echo_pair);
    if (row_wanted(argc, argv, "greet"))
        rate_row("greet", "accepts/s: connect, 1-byte greeting from the actor, close; 32 at once",
             0, accept_pair);

    if (!row_wanted(argc, argv, "idle"))
        return 0;
    double mb[REPS], mp[REPS];
    for (int r = 0; r < REPS; r++) {
        int port = free_port();
        serving = "broker";
        mb[r] = idle_run(port, start_node("greet", port));
        stop_children();
        port = free_port();
        serving = "plain";
        mp[r] = idle_run(port, start_plain("greet", port));
        stop_children();
    }
    int met = 1;
    for (int r = 0; r < REPS; r++)
        met &= mb[r] <= 4096;
    printf("| broker | memory per idle tcp connection, %d open (RSS growth / N; the kernel's "
           "socket buffers are not in RSS) | %.0f B (%.0f..%.0f) | %.0f B (%.0f..%.0f), plain "
           "libev | %.2fx | <= 4096 B | %s |\n",
           IDLE_N, med(mb), lo(mb), hi(mb), med(mp), lo(mp), hi(mp),
           med(mp) > 0 ? med(mb) / med(mp) : 0, met ? "met" : "**missed**");
    return 0;
}
