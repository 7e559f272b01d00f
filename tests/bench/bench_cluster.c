/* The cluster: two real nodes on loopback against raw ZeroMQ between two processes.
 *  - one-way stage.signal throughput (64 B and 1 KB string payloads, messages/s delivered at
 *    the receiving node) vs a raw DEALER->ROUTER flood of the same payload (SNDHWM 1000, as the
 *    node's DEALERs), and vs Skynet's cluster figure (a constant, not measured here);
 *  - serial request/reply (sid:msg=rid) round trips: median and p99 vs a raw ZeroMQ ping-pong;
 *    calls/s vs Skynet's figure (a constant, not measured here);
 *  - function send (a closure with 3 upvalues, serial f:run=done): the same closure (its
 *    bytecode cached by the peer, only the hash travels) vs a new closure each time;
 *  - membership: a 5-node cluster converging, and 3 nodes detecting a node killed with -9.
 * Every child is killed on exit (also on failure or a signal); every wait is bounded. */
#include "bench_scripts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <zmq.h>

enum { MAX_CHILDREN = 64, REPS = 3, THREADS = 1 /* workers per node: 2 nodes share the 2 cores */ };

static char binary[4096];
static char tmpdir[] = "/tmp/sn-bench-cluster-XXXXXX";
static pid_t main_pid;
static volatile pid_t children[MAX_CHILDREN];
static int keep_logs; /* set on failure: the node logs in tmpdir are kept */

/* ------------------------------------------------------------------ children */

static void track(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
    kill(pid, SIGKILL);
    fprintf(stderr, "bench_cluster: too many children\n");
    exit(1);
}

/* Kills one child (SIGKILL) and reaps it. */
static void reap(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

static void kill_all(void)
{
    if (getpid() != main_pid)
        return;
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0)
            reap(children[i]);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (!keep_logs && strcmp(tmpdir + strlen(tmpdir) - 6, "XXXXXX") != 0 && system(cmd) != 0)
        fprintf(stderr, "bench_cluster: could not remove %s\n", tmpdir);
}

/* Async-signal-safe: kills every child, removes tmpdir (fork + exec rm), exits. A forked
 * raw-ZeroMQ child (its alarm) just exits. */
static void on_signal(int sig)
{
    if (getpid() != main_pid)
        _exit(128 + sig);
    static const char msg[] = "bench_cluster: stopped by a signal (or over its time bound)\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    pid_t rm = fork();
    if (rm == 0) {
        execl("/bin/rm", "rm", "-rf", tmpdir, (char *)NULL);
        _exit(127);
    }
    if (rm > 0)
        waitpid(rm, NULL, 0);
    _exit(128 + sig);
}

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_cluster: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (node logs are kept in %s)\n", tmpdir);
    va_end(ap);
    keep_logs = 1;
    exit(1);
}

/* A TCP port free on 127.0.0.1 now, never handed out twice by this program. */
static int free_port(void)
{
    static int given[256];
    static int ngiven;
    for (int tries = 0; tries < 200; tries++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t al = sizeof a;
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
            getsockname(s, (struct sockaddr *)&a, &al) < 0)
            die("free_port: %s", strerror(errno));
        close(s);
        int port = ntohs(a.sin_port), dup = 0;
        for (int i = 0; i < ngiven; i++)
            dup |= given[i] == port;
        if (!dup && ngiven < 256) {
            given[ngiven++] = port;
            return port;
        }
    }
    die("no free port");
    return -1;
}

/* Starts the binary with the arguments args[0..n-1]; stderr goes to tmpdir/LOG.err.
 * With out, stdout is a pipe whose read end is stored there; otherwise /dev/null. */
static pid_t spawn_node(const char *log, int *out, int n, const char *const *args)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = binary;
    for (int i = 0; i < n && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int pfd[2] = {-1, -1};
    if (out && pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    char errpath[512];
    snprintf(errpath, sizeof errpath, "%s/%s.err", tmpdir, log);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDWR);
        if (e >= 0)
            dup2(e, 2);
        dup2(nul, 0);
        dup2(out ? pfd[1] : nul, 1);
        if (out) {
            close(pfd[0]);
            close(pfd[1]);
        }
        execv(binary, (char *const *)argv);
        _exit(127);
    }
    track(pid);
    if (out) {
        close(pfd[1]);
        *out = pfd[0];
    }
    return pid;
}

/* Reads "key value" lines (space or tab) from fd until every key was seen, the child closed
 * it, or `seconds` passed. Unseen values stay as they were. Returns 1 when every key was seen. */
static int read_keys(int fd, double seconds, int n, const char *const *keys, double *vals)
{
    char buf[65536];
    size_t len = 0;
    int *seen = calloc((size_t)n, sizeof *seen), nseen = 0;
    double deadline = bench_now() + seconds;
    while (nseen < n) {
        double left = deadline - bench_now();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = 0;
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = 0;
            for (int i = 0; i < n; i++) {
                size_t k = strlen(keys[i]);
                if (strncmp(buf, keys[i], k) == 0 && (buf[k] == ' ' || buf[k] == '\t')) {
                    vals[i] = atof(buf + k + 1);
                    if (!seen[i]) {
                        seen[i] = 1;
                        nseen++;
                    }
                }
            }
            size_t rest = len - (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, rest);
            len = rest;
            buf[len] = 0;
        }
        if (len == sizeof buf - 1)
            len = 0; /* an absurdly long line: drop it */
    }
    free(seen);
    return nseen == n;
}

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write %s", path);
}

/* ------------------------------------------------------------------ raw ZeroMQ baselines */

/* Waits (bounded) for `len` bytes from fd. Returns 1 when all came. */
static int read_full(int fd, void *p, size_t len, double seconds)
{
    size_t have = 0;
    double deadline = bench_now() + seconds;
    while (have < len) {
        double left = deadline - bench_now();
        struct pollfd q = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&q, 1, (int)(left * 1000) + 1) <= 0)
            return 0;
        ssize_t got = read(fd, (char *)p + have, len - have);
        if (got <= 0)
            return 0;
        have += (size_t)got;
    }
    return 1;
}

/* CPU-seconds this process used so far, every thread. */
static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* The child: a ROUTER on port. echo = 0: count n messages, report (count, last - first
 * arrival) on fd. echo = 1: send each message back to its sender, n times. */
static void raw_router(int port, long n, int echo, int fd)
{
    alarm(30);
    void *ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    int tmo = 5000, linger = 0;
    zmq_setsockopt(r, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(r, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    char ok = zmq_bind(r, ep) == 0 ? 'R' : 'E';
    if (write(fd, &ok, 1) != 1 || ok != 'R')
        _exit(1);
    double first = 0, last = 0;
    long count = 0;
    char id[256];
    static char data[65536];
    while (count < n) {
        int il = zmq_recv(r, id, sizeof id, 0);
        if (il < 0)
            break;
        int dl = zmq_recv(r, data, sizeof data, 0);
        if (dl < 0)
            break;
        last = bench_now();
        if (count++ == 0)
            first = last;
        if (echo && (zmq_send(r, id, (size_t)il, ZMQ_SNDMORE) < 0 ||
                     zmq_send(r, data, (size_t)dl, 0) < 0))
            break;
    }
    double res[3] = {(double)count, last - first, cpu_self()};
    if (write(fd, res, sizeof res) != (ssize_t)sizeof res)
        _exit(1);
    zmq_close(r);
    zmq_ctx_term(ctx);
    _exit(0);
}

typedef struct raw_pair {
    pid_t child;
    int fd;
    void *ctx, *dealer;
} raw_pair;

static void raw_open(raw_pair *rp, long n, int echo)
{
    int port = free_port();
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        raw_router(port, n, echo, pfd[1]);
    }
    track(pid);
    close(pfd[1]);
    rp->child = pid;
    rp->fd = pfd[0];
    char ok = 0;
    if (!read_full(rp->fd, &ok, 1, 10) || ok != 'R')
        die("raw ZeroMQ: the ROUTER child did not bind");
    rp->ctx = zmq_ctx_new();
    rp->dealer = zmq_socket(rp->ctx, ZMQ_DEALER);
    int hwm = 1000, linger = 1000, tmo = 5000;
    zmq_setsockopt(rp->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(rp->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(rp->dealer, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(rp->dealer, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    if (zmq_connect(rp->dealer, ep) != 0)
        die("raw ZeroMQ: connect: %s", zmq_strerror(zmq_errno()));
}

static void raw_close(raw_pair *rp)
{
    int zero = 0;
    zmq_setsockopt(rp->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(rp->dealer);
    zmq_ctx_term(rp->ctx);
    close(rp->fd);
    reap(rp->child);
}

/* DEALER -> ROUTER flood of n messages of `size` bytes; messages/s counted at the ROUTER;
 * *cpu: CPU-seconds of both processes from the first send to the last receive. */
static double raw_flood(size_t size, long n, double *cpu)
{
    raw_pair rp;
    raw_open(&rp, n, 0);
    double cpu0 = cpu_self();
    char *payload = malloc(size);
    memset(payload, 'x', size);
    for (long i = 0; i < n; i++)
        if (zmq_send(rp.dealer, payload, size, 0) < 0)
            die("raw ZeroMQ flood: send: %s", zmq_strerror(zmq_errno()));
    double res[3] = {0, 0, 0};
    if (!read_full(rp.fd, res, sizeof res, 20))
        die("raw ZeroMQ flood: no count from the ROUTER");
    *cpu = cpu_self() - cpu0 + res[2]; /* the ROUTER's whole life: it only waited before */
    free(payload);
    raw_close(&rp);
    if (res[0] < (double)n)
        die("raw ZeroMQ flood: the ROUTER got %.0f of %ld", res[0], n);
    return res[1] > 0 ? res[0] / res[1] : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* DEALER/ROUTER ping-pong, serial: `warm` untimed round trips then n timed ones; *cpu_us:
 * CPU of both processes per round trip, warm-up included. */
static void raw_pingpong(long n, long warm, double *med_us, double *p99_us, double *cpu_us)
{
    raw_pair rp;
    raw_open(&rp, n + warm, 1);
    double cpu0 = cpu_self();
    double *rtt = malloc((size_t)n * sizeof *rtt);
    char msg[16] = "ping-0123456789", back[64];
    for (long i = 0; i < n + warm; i++) {
        double t = bench_now();
        if (zmq_send(rp.dealer, msg, sizeof msg, 0) < 0 ||
            zmq_recv(rp.dealer, back, sizeof back, 0) < 0)
            die("raw ZeroMQ ping-pong: %s", zmq_strerror(zmq_errno()));
        if (i >= warm)
            rtt[i - warm] = (bench_now() - t) * 1e6;
    }
    double res[3] = {0, 0, 0};
    if (!read_full(rp.fd, res, sizeof res, 20))
        die("raw ZeroMQ ping-pong: no CPU figure from the ROUTER");
    *cpu_us = (cpu_self() - cpu0 + res[2]) * 1e6 / (double)(n + warm);
    raw_close(&rp);
    qsort(rtt, (size_t)n, sizeof *rtt, cmp_double);
    *med_us = rtt[n / 2];
    long k = (long)(0.99 * (double)n + 0.999999) - 1;
    *p99_us = rtt[k < 0 ? 0 : k];
    free(rtt);
}

/* ------------------------------------------------------------------ two nodes */

static double metric(int port, const char *sample);

static const char sink_lua[] =
    "local n, t0, t1 = 0, 0, 0\n"
    "stage.waitfor('x', function ()\n"
    "  n = n + 1\n"
    "  if n == 1 then t0 = process.clock end\n"
    "  t1 = process.clock\n"
    "end)\n"
    "stage.waitfor('done', function ()\n"
    "  local count, dt = n, t1 - t0\n"
    "  n = 0\n"
    "  return count, dt\n"
    "end)\n"
    "stage.waitfor('ping', function () return 'sink' end)\n";

static const char f_lua[] = "stage.waitfor('run', function (f) return f() end)\n"
                            "stage.waitfor('cpu', function () return os.clock() end)\n"
                            "stage.waitfor('echo', function (x) return x end)\n"
                            "stage.waitfor('ping', function () return 'f' end)\n";

/* The driver, on node A: waits until both stages of B answer, then runs its phases one after
 * the other and prints "key value" lines; "end 1" last. */
static const char driver_fmt[] =
    "local N, K, W, M = %ld, %ld, %ld, %ld\n"
    "local phases = {}\n"
    "local function nextphase()\n"
    "  local p = table.remove(phases, 1)\n"
    "  if p then p() else print('end', 1) end\n"
    "end\n"
    /* CPU-seconds of both processes (os.clock: every thread of the process) around a phase;
     * B's is asked for with a round trip outside the phase */
    "local cpuk\n"
    "stage.waitfor('cpub', function (b) local k = cpuk cpuk = nil k(os.clock(), b) end)\n"
    "local function cpu_mark(k) cpuk = k stage.signal('f:cpu=cpub') end\n"
    "local function measured(key, phase)\n"
    "  return function ()\n"
    "    cpu_mark(function (a0, b0)\n"
    "      local t0 = process.clock\n"
    "      phase(function ()\n"
    "        local t1 = process.clock\n"
    "        cpu_mark(function (a1, b1)\n"
    "          print(key .. '_cpu', (a1 - a0) + (b1 - b0))\n"
    "          print(key .. '_wall', t1 - t0)\n"
    "          nextphase()\n"
    "        end)\n"
    "      end)\n"
    "    end)\n"
    "  end\n"
    "end\n"
    /* one-way flood of N messages of `size` bytes, paced by the peer queue */
    "local function flood(size, key)\n"
    "  return measured(key, function (done)\n"
    "    local payload, sent, full = ('x'):rep(size), 0, 0\n"
    "    stage.waitfor('report', function (n, dt)\n"
    "      if n == nil then\n" /* the request itself met a full queue: ask again */
    "        stage.addtask(10, function () stage.signal('sink:done=report') end)\n"
    "        return\n"
    "      end\n"
    "      print(key, n > 1 and dt > 0 and n / dt or 0)\n"
    "      print(key .. '_delivered', n)\n"
    "      print(key .. '_full', full)\n"
    "      done()\n"
    "    end)\n"
    "    stage.addtask(0, function ()\n"
    "      while sent < N do\n"
    "        if stage.signal('sink:x', payload) == 0 then full = full + 1 return 1 end\n"
    "        sent = sent + 1\n"
    "      end\n"
    "      stage.signal('sink:done=report')\n"
    "    end)\n"
    "  end)\n"
    "end\n"
    "phases[#phases + 1] = flood(64, 'flood64')\n"
    "phases[#phases + 1] = flood(1024, 'flood1k')\n"
    /* serial request/reply: W untimed, then K timed round trips */
    "phases[#phases + 1] = measured('rr', function (done)\n"
    "  local rtt, i, t, tstart = {}, 0, 0, 0\n"
    "  stage.waitfor('rep', function (v, err)\n"
    "    local now = process.clock\n"
    "    if v ~= i then print('rr_error', 1) print('rr_reason', tostring(err)) return end\n"
    "    i = i + 1\n"
    "    if i > W then rtt[#rtt + 1] = now - t end\n"
    "    if i == W then tstart = now end\n"
    "    if i == W + K then\n"
    "      print('rr_rate', K / (now - tstart))\n"
    "      table.sort(rtt)\n"
    "      print('rr_med', rtt[#rtt // 2 + 1] * 1e6)\n"
    "      print('rr_p99', rtt[math.max(1, math.ceil(#rtt * 0.99))] * 1e6)\n"
    "      return done()\n"
    "    end\n"
    "    t = process.clock\n"
    "    stage.signal('f:echo=rep', i)\n"
    "  end)\n"
    "  t = process.clock\n"
    "  stage.signal('f:echo=rep', 0)\n"
    "end)\n"
    /* function send: M new closures (distinct bytecode) and one closure M times, in
     * alternating blocks of 100 (so load changes hit both alike); rates from the summed
     * round trips */
    "phases[#phases + 1] = function ()\n"
    "  local gen = {}\n"
    "  for j = 1, M do\n"
    "    gen[j] = load('local a, b, c = ... return function () return a + b + c + ' .. j .. ' end')(1, 2, 3)\n"
    "  end\n"
    "  local x, y, z = 1, 2, 3\n"
    "  local same = function () return x + y + z + 1000000 end\n"
    "  local BLOCK, mode, t, bad = 100, 'warm', 0, 0\n"
    "  local nnew, tnew, nsame, tsame = 0, 0, 0, 0\n"
    "  local function send()\n"
    "    t = process.clock\n"
    "    stage.signal('f:run=fdone', mode == 'new' and gen[nnew + 1] or same)\n"
    "  end\n"
    "  stage.waitfor('fdone', function (v)\n"
    "    local dt = process.clock - t\n"
    "    if mode == 'new' then\n"
    "      nnew, tnew = nnew + 1, tnew + dt\n"
    "      if v ~= 6 + nnew then bad = bad + 1 end\n"
    "      if nnew %% BLOCK == 0 or nnew == M then mode = 'same' end\n"
    "    elseif mode == 'same' then\n"
    "      nsame, tsame = nsame + 1, tsame + dt\n"
    "      if v ~= 1000006 then bad = bad + 1 end\n"
    "      if nsame %% BLOCK == 0 and nnew < M then mode = 'new' end\n"
    "    else\n" /* the warm-up: `same` has been sent once, from now on it is cached */
    "      if v ~= 1000006 then bad = bad + 1 end\n"
    "      mode = 'new'\n"
    "    end\n"
    "    if nnew == M and nsame == M then\n"
    "      print('fn_new', M / tnew)\n"
    "      print('fn_same', M / tsame)\n"
    "      print('fn_bad', bad)\n"
    "      return nextphase()\n"
    "    end\n"
    "    send()\n"
    "  end)\n"
    "  send()\n"
    "end\n"
    /* start once both stages of B answer (the cluster routes to them) */
    "local seen, started = {}, false\n"
    "stage.waitfor('pong', function (who)\n"
    "  if who then seen[who] = true end\n"
    "  if seen.sink and seen.f and not started then started = true print('ready', 1) nextphase() end\n"
    "end)\n"
    "stage.addtask(20, function ()\n"
    "  if started then return nil end\n"
    "  stage.signal('sink:ping=pong')\n"
    "  stage.signal('f:ping=pong')\n"
    "  return 50\n"
    "end)\n";

enum {
    K_FLOOD64, K_FLOOD1K, K_RR_RATE, K_RR_MED, K_RR_P99, K_FN_NEW, K_FN_SAME, K_FN_BAD,
    K_DEL64, K_DEL1K, K_CPU64, K_WALL64, K_CPU1K, K_WALL1K, K_RR_CPU, K_RR_WALL, K_END,
    K_HITS, K_THREADS_A, K_THREADS_B, NKEYS, NREAD = K_HITS
};
static const char *const node_keys[NREAD] = {
    "flood64", "flood1k", "rr_rate", "rr_med", "rr_p99", "fn_new", "fn_same", "fn_bad",
    "flood64_delivered", "flood1k_delivered", "flood64_cpu", "flood64_wall", "flood1k_cpu",
    "flood1k_wall", "rr_cpu", "rr_wall", "end"};

/* The "Threads:" line of /proc/PID/status, -1 if unreadable. */
static double threads_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double n = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            n = atof(line + 8);
    if (f)
        fclose(f);
    return n;
}

/* CurveZMQ for the two nodes: a keypair each (stage-node keygen) and the allow file that
 * names them; functions travel only between authenticated nodes (docs/security.md). Made
 * once; the paths go to keya, keyb, allow. */
static void curve_files(char *keya, char *keyb, char *allow, size_t cap)
{
    snprintf(keya, cap, "%s/A.key", tmpdir);
    snprintf(keyb, cap, "%s/B.key", tmpdir);
    snprintf(allow, cap, "%s/allow.keys", tmpdir);
    if (access(allow, R_OK) == 0)
        return;
    static char cmd[4 * 4096 + 8 * 512];
    snprintf(cmd, sizeof cmd, "'%s' keygen '%s' >/dev/null && '%s' keygen '%s' >/dev/null && "
             "{ printf '%%s A\\n' \"$(cat '%s.pub')\"; printf '%%s B\\n' \"$(cat '%s.pub')\"; } > '%s'",
             binary, keya, binary, keyb, keya, keyb, allow);
    if (system(cmd) != 0)
        die("cannot make the CurveZMQ keys: %s", cmd);
}

/* One run of the two nodes; fills vals[NKEYS]. */
static void two_nodes(long n, long k, long warm, long m, double *vals, int rep)
{
    char sink[512], f[512], drv[512], script[8192];
    write_file("sink.lua", sink_lua, sink, sizeof sink);
    write_file("f.lua", f_lua, f, sizeof f);
    snprintf(script, sizeof script, driver_fmt, n, k, warm, m);
    write_file("driver.lua", script, drv, sizeof drv);
    char lb[64], la[64], join[64], asink[600], af[600], logb[32], loga[32];
    int pb = free_port(), pa = free_port(), hbport = free_port();
    char hb[64], threads[16];
    snprintf(hb, sizeof hb, "127.0.0.1:%d", hbport);
    snprintf(threads, sizeof threads, "%d", THREADS);
    snprintf(lb, sizeof lb, "tcp://127.0.0.1:%d", pb);
    snprintf(la, sizeof la, "tcp://127.0.0.1:%d", pa);
    char keya[512], keyb[512], allow[512];
    curve_files(keya, keyb, allow, sizeof keya);
    /* SN_BENCH_CURVE=shared: one keypair for both and no allow file, as nodes before issue 12
     * ran CURVE; this program run next to an older stage-node then measures, against the
     * default, what identity per node costs. */
    const char *mode = getenv("SN_BENCH_CURVE");
    int shared = mode && strcmp(mode, "shared") == 0;
    snprintf(join, sizeof join, shared ? "127.0.0.1:%d" : "B@127.0.0.1:%d", pb);
    if (shared)
        snprintf(keyb, sizeof keyb, "%s", keya);
    snprintf(asink, sizeof asink, "sink=%s:1", sink);
    snprintf(af, sizeof af, "f=%s:1", f);
    snprintf(logb, sizeof logb, "B-%d", rep);
    snprintf(loga, sizeof loga, "A-%d", rep);
    const char *bargs[] = {"--name", "B", "--listen", lb, "--http", hb, "--threads", threads,
                           "--actor", asink, "--actor", af, "--curve-secret", keyb,
                           "--curve-allow", allow};
    int nb = (int)(sizeof bargs / sizeof *bargs) - (shared ? 2 : 0);
    pid_t b = spawn_node(logb, NULL, nb, bargs);
    const char *aargs[] = {"--name", "A", "--listen", la, "--join", join, "--threads", threads,
                           "--curve-secret", keya, "--curve-allow", allow, drv};
    int na = (int)(sizeof aargs / sizeof *aargs);
    if (shared) { /* drop --curve-allow FILE: the script stays last */
        aargs[na - 3] = drv;
        na -= 2;
    }
    int out = -1;
    pid_t a = spawn_node(loga, &out, na, aargs);
    for (int i = 0; i < NKEYS; i++)
        vals[i] = -1;
    int ok = read_keys(out, 40, NREAD, node_keys, vals);
    close(out);
    vals[K_HITS] = metric(hbport, "stage_function_cache_total{result=\"hit\"}");
    vals[K_THREADS_A] = threads_of(a);
    vals[K_THREADS_B] = threads_of(b);
    reap(a);
    reap(b);
    if (!ok || vals[K_END] != 1)
        die("two nodes, run %d: the driver did not finish (got flood64 %g, flood1k %g, rr %g, "
            "fn_new %g, fn_same %g)",
            rep, vals[K_FLOOD64], vals[K_FLOOD1K], vals[K_RR_RATE], vals[K_FN_NEW],
            vals[K_FN_SAME]);
    if (vals[K_FN_BAD] != 0)
        die("function send: %g wrong results", vals[K_FN_BAD]);
}

/* ------------------------------------------------------------------ membership */

/* GET path from 127.0.0.1:port (bounded: 0.5 s per read, 2 s in all); the body with its
 * headers, NUL-terminated, to free; NULL when there was no answer. */
static char *http_get(int port, const char *path)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[256];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0 || write(s, req, (size_t)rl) != rl) {
        close(s);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *body = malloc(cap);
    double deadline = bench_now() + 2;
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            body = realloc(body, cap);
        }
        ssize_t got = read(s, body + len, cap - 1 - len);
        if (got <= 0 || bench_now() > deadline)
            break;
        len += (size_t)got;
    }
    close(s);
    body[len] = 0;
    if (len == 0) {
        free(body);
        return NULL;
    }
    return body;
}

/* GET /status.json; counts the members listed in state `state` ("alive", "down").
 * -1 when there was no answer. */
static int count_members(int port, const char *state)
{
    char *body = http_get(port, "/status.json");
    if (!body)
        return -1;
    int count = -1;
    char *members = strstr(body, "\"members\":[");
    if (members) {
        char *end = strchr(members, ']'); /* member objects hold no arrays */
        if (end)
            *end = 0;
        char pat[64];
        snprintf(pat, sizeof pat, "\"state\":\"%s\"", state);
        count = 0;
        for (char *p = members; (p = strstr(p, pat)); p += strlen(pat))
            count++;
    }
    free(body);
    return count;
}

/* The value of the /metrics sample starting with `sample` (e.g. `name{label="x"}`), -1 if
 * absent. */
static double metric(int port, const char *sample)
{
    char *body = http_get(port, "/metrics");
    double v = -1;
    size_t k = strlen(sample);
    for (char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, sample, k) == 0 && p[k] == ' ') {
            v = atof(p + k + 1);
            break;
        }
    free(body);
    return v;
}

/* Polls every node until each lists `want` members in `state` (a node seen there once is not
 * asked again); returns seconds from t0, or -1 after `seconds`. */
static double wait_members(const pid_t *pids, const int *http, int n, const char *state,
                           int want, double t0, double seconds)
{
    int done[16] = {0}, ndone = 0;
    double deadline = bench_now() + seconds;
    while (bench_now() < deadline) {
        for (int i = 0; i < n; i++)
            if (waitpid(pids[i], NULL, WNOHANG) != 0)
                die("node m%d exited while the cluster was forming", i + 1);
        for (int i = 0; i < n; i++)
            if (!done[i] && count_members(http[i], state) >= want) {
                done[i] = 1;
                ndone++;
            }
        if (ndone == n)
            return bench_now() - t0;
        usleep(10000);
    }
    return -1;
}

/* Starts n nodes m1..mn, each joining the previous one, with --http; `fast`: short failure
 * detection (heartbeat 200 ms, suspect and down 1000 ms). */
static void start_members(int n, int fast, pid_t *pids, int *http, const char *tag)
{
    int port[16];
    for (int i = 0; i < n; i++) {
        port[i] = free_port();
        http[i] = free_port();
    }
    for (int i = 0; i < n; i++) {
        char name[32], listen[64], h[64], join[64], log[64];
        snprintf(name, sizeof name, "m%d", i + 1);
        snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", port[i]);
        snprintf(h, sizeof h, "127.0.0.1:%d", http[i]);
        snprintf(join, sizeof join, "127.0.0.1:%d", i ? port[i - 1] : 0);
        snprintf(log, sizeof log, "%s-%s", tag, name);
        const char *args[20] = {"--name", name,     "--listen",  listen, "--http",
                                h,        "--threads", "1",       "--insecure"};
        int k = 9;
        if (fast) {
            const char *sets[] = {"--set", "heartbeat=200", "--set", "suspect=1000", "--set",
                                  "down=1000"};
            for (size_t j = 0; j < sizeof sets / sizeof *sets; j++)
                args[k++] = sets[j];
        }
        if (i > 0) {
            args[k++] = "--join";
            args[k++] = join;
        }
        pids[i] = spawn_node(log, NULL, k, args);
    }
}

/* A 5-node cluster, each node joining the previous one: seconds from the first start until
 * every node lists 5 alive members. */
static double converge5(int fast, int rep)
{
    pid_t pids[5];
    int http[5];
    char tag[32];
    snprintf(tag, sizeof tag, "conv%d", rep);
    double t0 = bench_now();
    start_members(5, fast, pids, http, tag);
    double t = wait_members(pids, http, 5, "alive", 5, t0, 20);
    for (int i = 0; i < 5; i++)
        reap(pids[i]);
    if (t < 0)
        die("5 nodes did not converge within 20 s");
    return t;
}

/* 3 nodes; kill -9 the third; seconds until both others list it down. */
static double detect_kill(int fast, int rep)
{
    pid_t pids[3];
    int http[3];
    char tag[32];
    snprintf(tag, sizeof tag, "detect%d", rep);
    start_members(3, fast, pids, http, tag);
    if (wait_members(pids, http, 3, "alive", 3, bench_now(), 20) < 0)
        die("3 nodes did not converge within 20 s");
    usleep(300000); /* a few heartbeats in the steady state */
    double t0 = bench_now();
    reap(pids[2]);
    double t = wait_members(pids, http, 2, "down", 1, t0, 20);
    reap(pids[0]);
    reap(pids[1]);
    if (t < 0)
        die("the killed node was not marked down within 20 s");
    return t;
}

/* ------------------------------------------------------------------ main */

static double maxd(double a, double b)
{
    return a > b ? a : b;
}

/* The median of REPS values (a sorted copy). */
static double median(const double *v)
{
    double c[REPS];
    memcpy(c, v, sizeof c);
    qsort(c, REPS, sizeof c[0], cmp_double);
    return c[REPS / 2];
}

static double lowest(const double *v)
{
    double m = v[0];
    for (int i = 1; i < REPS; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double highest(const double *v)
{
    double m = v[0];
    for (int i = 1; i < REPS; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* One row over REPS runs: the figure's and the baseline's median and range, and the ratio
 * of each run's figure to the baseline measured in that same run (median and range). Met
 * only when every run met the target: one run that missed is a miss. */
static void row3(const char *area, const char *name, const double *fig, const double *base,
                 const char *unit, double target, int lower_is_better)
{
    double ratio[REPS];
    int met = 1;
    for (int i = 0; i < REPS; i++) {
        ratio[i] = base[i] > 0 ? fig[i] / base[i] : 0;
        met &= lower_is_better ? ratio[i] <= target : ratio[i] >= target;
    }
    char tgt[64] = "-";
    if (target > 0)
        snprintf(tgt, sizeof tgt, "%s %.2fx", lower_is_better ? "<=" : ">=", target);
    printf("| %s | %s | %.4g %s (%.4g-%.4g) | %.4g %s (%.4g-%.4g) | %.2fx (%.2f-%.2f) | %s | %s "
           "|\n",
           area, name, median(fig), unit, lowest(fig), highest(fig), median(base), unit,
           lowest(base), highest(base), median(ratio), lowest(ratio), highest(ratio), tgt,
           target <= 0 ? "n/a" : met ? "met" : "**missed**");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    (void)argc;
    main_pid = getpid();
    bench_binary(argv[0], binary, sizeof binary);
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "bench_cluster: no stage-node next to the program (%s)\n", binary);
        return 1;
    }
    if (!mkdtemp(tmpdir)) {
        perror("bench_cluster: mkdtemp");
        return 1;
    }
    atexit(kill_all);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGALRM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    alarm(150); /* a hard bound on the whole program (it takes about 30 s) */

    const long N = 100000, K = 3000, WARM = 300, M = 1500;
    double raw64[REPS], raw1k[REPS], rawcpu64[REPS], rawcpu1k[REPS], raw_med[REPS],
        raw_p99[REPS], raw_cpu[REPS];
    double v[REPS][NKEYS], node64[REPS], node1k[REPS], cpu64[REPS], cpu1k[REPS],
        rr_med[REPS], rr_p99[REPS], rr_rate[REPS], rr_cpu[REPS], fn_new[REPS], fn_same[REPS],
        sky_flood[REPS], sky_call[REPS];
    double del64 = 1e30, del1k = 1e30, hits = 1e30, tha = 0, thb = 0;
    for (int r = 0; r < REPS; r++) {
        raw64[r] = raw_flood(64, N, &rawcpu64[r]);
        raw1k[r] = raw_flood(1024, N, &rawcpu1k[r]);
        raw_pingpong(K, WARM, &raw_med[r], &raw_p99[r], &raw_cpu[r]);
        two_nodes(N, K, WARM, M, v[r], r);
        double *x = v[r];
        node64[r] = x[K_FLOOD64];
        node1k[r] = x[K_FLOOD1K];
        cpu64[r] = x[K_CPU64];
        cpu1k[r] = x[K_CPU1K];
        rr_med[r] = x[K_RR_MED];
        rr_p99[r] = x[K_RR_P99];
        rr_rate[r] = x[K_RR_RATE];
        rr_cpu[r] = x[K_RR_CPU] * 1e6 / (double)(K + WARM);
        fn_new[r] = x[K_FN_NEW];
        fn_same[r] = x[K_FN_SAME];
        sky_flood[r] = 100000;
        sky_call[r] = 11000;
        del64 = x[K_DEL64] < del64 ? x[K_DEL64] : del64;
        del1k = x[K_DEL1K] < del1k ? x[K_DEL1K] : del1k;
        hits = x[K_HITS] < hits ? x[K_HITS] : hits;
        tha = x[K_THREADS_A];
        thb = x[K_THREADS_B];
        fprintf(stderr,
                "bench_cluster: run %d: raw 64 B %.0f/s (CPU %.2f s), 1 KB %.0f/s (CPU %.2f s), "
                "ping-pong %.1f/%.1f us, %.1f us CPU per round trip; node 64 B %.0f/s (%.0f of "
                "%ld delivered; CPU %.2f s over %.2f s), 1 KB %.0f/s (%.0f delivered; CPU %.2f s "
                "over %.2f s), rr %.0f/s %.1f/%.1f us, %.1f us CPU per call, fn new %.0f/s "
                "same %.0f/s (%.0f cache hits at B); threads A %.0f, B %.0f\n",
                r, raw64[r], rawcpu64[r], raw1k[r], rawcpu1k[r], raw_med[r], raw_p99[r],
                raw_cpu[r], node64[r], x[K_DEL64], N, cpu64[r], x[K_WALL64], node1k[r],
                x[K_DEL1K], cpu1k[r], x[K_WALL1K], rr_rate[r], rr_med[r], rr_p99[r], rr_cpu[r],
                fn_new[r], fn_same[r], x[K_HITS], tha, thb);
    }
    char name[768];
    snprintf(name, sizeof name,
             "one-way stage.signal across 2 nodes (loopback, %d worker each; threads per "
             "process: A %.0f, B %.0f), 64 B string, median of %d (>= %.0f%% of %ld delivered; "
             "CPU of both nodes %.2f s (%.2f-%.2f) for %ld messages, raw ZeroMQ %.2f s; vs raw "
             "ZeroMQ DEALER->ROUTER, 2 processes, in the same run)",
             THREADS, tha, thb, REPS, 100.0 * del64 / (double)N, N, median(cpu64), lowest(cpu64),
             highest(cpu64), N, median(rawcpu64));
    row3("cluster", name, node64, raw64, "msgs/s", 0.40, 0);
    snprintf(name, sizeof name,
             "one-way stage.signal across 2 nodes, 1 KB string, median of %d (>= %.0f%% of %ld "
             "delivered; CPU of both nodes %.2f s (%.2f-%.2f), raw ZeroMQ %.2f s; vs raw "
             "ZeroMQ DEALER->ROUTER, 2 processes)",
             REPS, 100.0 * del1k / (double)N, N, median(cpu1k), lowest(cpu1k), highest(cpu1k),
             median(rawcpu1k));
    row3("cluster", name, node1k, raw1k, "msgs/s", 0.40, 0);
    row3("cluster",
         "one-way stage.signal across 2 nodes, 64 B (vs Skynet cluster (reference figure, "
         "not measured here))",
         node64, sky_flood, "msgs/s", 5.0, 0);
    row3("cluster",
         "request/reply across 2 nodes (sid:msg=rid, serial), median round trip (vs raw "
         "ZeroMQ DEALER/ROUTER ping-pong median, same run)",
         rr_med, raw_med, "us", 1.5, 1);
    row3("cluster",
         "request/reply across 2 nodes (sid:msg=rid, serial), p99 round trip (vs raw "
         "ZeroMQ ping-pong p99)",
         rr_p99, raw_p99, "us", 0, 1);
    row3("cluster",
         "request/reply across 2 nodes, serial: CPU per call, both processes (os.clock "
         "around the phase / calls, warm-up included) (vs raw ZeroMQ ping-pong: both "
         "processes' CPU per round trip)",
         rr_cpu, raw_cpu, "us", 2.0, 1);
    row3("cluster",
         "request/reply across 2 nodes, serial calls/s (vs Skynet cluster call (reference "
         "figure, not measured here))",
         rr_rate, sky_call, "calls/s", 0, 0);
    snprintf(name, sizeof name,
             "function send, closure with 3 upvalues, serial f:run=done: the same closure "
             "(cached: %.0f cache hits at the receiver for %ld sends) vs a new closure each "
             "time (bytecode travels); alternating blocks of 100. A small closure's bytecode "
             "(~200 B) costs little next to the round trip both variants pay, so the ratio "
             "is bounded near 1 by the round trip (docs/benchmarks-notes.md)",
             hits, M);
    row3("cluster", name, fn_same, fn_new, "rt/s", 5.0, 0);

    /* membership: no baseline; the configured bound stands in for one */
    double conv[REPS], det = 0;
    for (int r = 0; r < REPS; r++) {
        conv[r] = converge5(0, r);
        double d = detect_kill(1, r);
        fprintf(stderr, "bench_cluster: membership run %d: converge %.3f s, detect %.3f s\n", r,
                conv[r], d);
        det = maxd(det, d);
    }
    qsort(conv, REPS, sizeof conv[0], cmp_double);
    bench_row("membership",
              "5 nodes (each joins the previous; default heartbeat 1000 ms) converge: every node "
              "lists 5 alive, from the first start, median of 3 (vs a bound: join retry 200 ms "
              "+ one heartbeat of gossip per join hop, 4 x 1000 ms)",
              conv[REPS / 2], 4.2, "s", 0, 1);
    bench_row("membership",
              "3 nodes detect a kill -9: both survivors list it down, worst of 3 (vs the bound "
              "suspect 1000 + down 1000 + heartbeat 200 ms)",
              det, 2.2, "s", 1.0, 1);
    return 0;
}
