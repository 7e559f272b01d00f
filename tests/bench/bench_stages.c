/* bench_stages: the index stage from a script against a Redis sorted set, in the same run.
 *  - index updates (index:s?board with one entry), rank queries (index:g?board KEY) and
 *    top-100 reads (index:f?board {1, 100}) per second, sent by a script with 100
 *    requests outstanding, on a board of 100,000 keys; against ZADD, ZREVRANK and
 *    ZREVRANGE 0 99 WITHSCORES from a hiredis client pipelining 100 commands to a
 *    redis-server this program starts on a free port;
 *  - a control row: the same script against a stage `echo` (spawned by it) whose handler
 *    returns a constant of the shape of a rank reply, no index behind it: what the generic
 *    request path (signal, mailbox, scheduler, Lua entry, reply, two snapshots) costs
 *    alone, beside ZREVRANK, so that the rank row's gap splits into path and index;
 *  - the growth of a rank query from 10,000 to 1,000,000 entries (rate at 1,000,000 / rate
 *    at 10,000), for the index and for Redis.
 * Arguments (optional): the rows to run, among set rank echo top growth (default: all).
 * Each figure is the median of 3 runs, with the range; CPU-seconds beside wall seconds: for
 * stage-node the whole node process during the measured phase, for Redis the server and the
 * client together; and that CPU per request. */
#include "bench.h"
#include "bench_scripts.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

enum { RUNS = 3, WINDOW = 100, BOARD = 100000 };

typedef struct rate {
    double per_s, cpu_s, wall_s;
} rate;

static const char index_lua[] =
    "local OP, N, PRE, W = '%s', %d, %d, %d\n"
    "local function cpu()\n"
    "  local f = io.open('/proc/self/stat'); local s = f:read('a'); f:close()\n"
    "  local v = {}\n"
    "  for x in s:gsub('^.-%%) ', ''):gmatch('%%S+') do v[#v + 1] = x end\n"
    "  return (tonumber(v[12]) + tonumber(v[13])) / 100\n"
    "end\n"
    "local filled, sent, got, t0, c0 = 0, 0, 0\n"
    "local function req()\n"
    "  sent = sent + 1\n"
    "  local i = math.random(PRE)\n"
    "  if OP == 'set' then stage.signal('index:s?board=r', {['k' .. i] = {i = math.random(1e9)}})\n"
    "  elseif OP == 'rank' then stage.signal('index:g?board=r', 'k' .. i)\n"
    "  elseif OP == 'echo' then stage.signal('echo:g?board=r', 'k' .. i)\n"
    "  else stage.signal('index:f?board=r', {1, 100}) end\n"
    "end\n"
    "stage.waitfor('r', function(r, e)\n"
    "  if r == nil then print('error ' .. tostring(e)); stage.exit() return end\n"
    "  got = got + 1\n"
    "  if sent < N then req() end\n"
    "  if got == N then\n"
    "    print('wall ' .. (process.clock - t0)); print('cpu ' .. (cpu() - c0)); stage.exit()\n"
    "  end\n"
    "end)\n"
    "local function start()\n"
    "  t0, c0 = process.clock, cpu()\n"
    "  for _ = 1, W do req() end\n"
    "end\n"
    "stage.waitfor('filled', function()\n"
    "  filled = filled + 1\n"
    "  if filled * 10000 >= PRE then start() end\n"
    "end)\n"
    "if OP == 'echo' then\n"
    "  stage.spawn('echo', function()\n"
    "    local C = {k50000 = {I = {{d = 50000, i = 500000000}}}}\n"
    "    stage.waitfor('@', function() return C end)\n"
    "  end)\n"
    "  start()\n"
    "  return\n"
    "end\n"
    "for b = 0, (PRE - 1) // 10000 do\n"
    "  local t = {}\n"
    "  for i = b * 10000 + 1, math.min(PRE, b * 10000 + 10000) do\n"
    "    t['k' .. i] = {i = math.random(1e9)}\n"
    "  end\n"
    "  stage.signal('index:s?board=filled', t)\n"
    "end\n";

static char binary[4096];
static pid_t redis_pid;
static int redis_port;

static void stop_redis(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    if (redis_pid > 0)
        kill(redis_pid, SIGTERM);
    _exit(1);
}

static redisContext *redis_connect(void)
{
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", redis_port);
        if (c && !c->err)
            return c;
        if (c)
            redisFree(c);
        usleep(25000);
    }
    fprintf(stderr, "bench_stages: cannot reach redis-server on port %d\n", redis_port);
    stop_redis();
    exit(1);
}

static void start_redis(void)
{
    redis_port = bench_free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", (char *)NULL);
        perror("bench_stages: redis-server (scripts/deps.sh bench installs it)");
        _exit(127);
    }
    redisContext *c = redis_connect();
    redisFree(c);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static void check_reply(redisReply *r)
{
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "bench_stages: redis: %s\n", r ? r->str : "no reply");
        stop_redis();
        exit(1);
    }
    freeReplyObject(r);
}

static void redis_append(redisContext *c, const char *op, int pre)
{
    char key[32];
    snprintf(key, sizeof key, "k%d", 1 + rand() % pre);
    if (strcmp(op, "set") == 0)
        redisAppendCommand(c, "ZADD board %d %s", rand() % 1000000000, key);
    else if (strcmp(op, "rank") == 0 || strcmp(op, "echo") == 0)
        redisAppendCommand(c, "ZREVRANK board %s", key);
    else
        redisAppendCommand(c, "ZREVRANGE board 0 99 WITHSCORES");
}

/* One Redis run: a fresh board of pre keys, then n ops with WINDOW outstanding. */
static rate redis_run(const char *op, int n, int pre)
{
    redisContext *c = redis_connect();
    check_reply(redisCommand(c, "DEL board"));
    for (int b = 0; b < pre; b += 1000) { /* filled in pipelined batches */
        int m = pre - b < 1000 ? pre - b : 1000;
        for (int i = 0; i < m; i++)
            redisAppendCommand(c, "ZADD board %d k%d", rand() % 1000000000, b + i + 1);
        for (int i = 0; i < m; i++) {
            void *r;
            redisGetReply(c, &r);
            check_reply(r);
        }
    }
    double t = bench_now(), cpu = self_cpu() + bench_proc_cpu(redis_pid);
    int sent = 0;
    for (; sent < WINDOW && sent < n; sent++)
        redis_append(c, op, pre);
    for (int got = 0; got < n; got++) {
        void *r;
        if (redisGetReply(c, &r) != REDIS_OK)
            check_reply(NULL);
        check_reply(r);
        if (sent < n) {
            redis_append(c, op, pre);
            sent++;
        }
    }
    rate out;
    out.wall_s = bench_now() - t;
    out.cpu_s = self_cpu() + bench_proc_cpu(redis_pid) - cpu;
    out.per_s = n / out.wall_s;
    redisFree(c);
    return out;
}

static rate index_run(const char *op, int n, int pre)
{
    char script[4096];
    snprintf(script, sizeof script, index_lua, op, n, pre, WINDOW);
    rate out = {0, 0, 0};
    bench_script(binary, "--threads 2 --log-level warn", script, "wall", &out.wall_s, "cpu", &out.cpu_s);
    if (out.wall_s <= 0) {
        fprintf(stderr, "bench_stages: the index script reported no time (%s)\n", op);
        stop_redis();
        exit(1);
    }
    out.per_s = n / out.wall_s;
    return out;
}

static int cmp_rate(const void *a, const void *b)
{
    double x = ((const rate *)a)->per_s, y = ((const rate *)b)->per_s;
    return (x > y) - (x < y);
}

/* RUNS runs of fn, sorted: [0] the lowest, [RUNS / 2] the median. */
static void runs(rate (*fn)(const char *, int, int), const char *op, int n, int pre, rate *v)
{
    for (int i = 0; i < RUNS; i++)
        v[i] = fn(op, n, pre);
    qsort(v, RUNS, sizeof *v, cmp_rate);
}

/* CPU microseconds per request of a run. */
static double cpu_us(const rate *r)
{
    return r->cpu_s / (r->per_s * r->wall_s) * 1e6;
}

static void row(const char *name, const rate *a, const rate *b, const char *against,
                double target)
{
    const rate *ma = &a[RUNS / 2], *mb = &b[RUNS / 2];
    double ratio = ma->per_s / mb->per_s;
    char tgt[32] = "-"; /* target 0: a reference row (Redis's own growth, the echo control) */
    if (target > 0)
        snprintf(tgt, sizeof tgt, ">= %.2fx", target);
    printf("| stages | %s, median of %d (range) | %.0f/s (%.0f-%.0f); %.2f CPU-s in %.2f s, "
           "%.1f us CPU/op | %s %.0f/s (%.0f-%.0f); %.2f CPU-s in %.2f s, %.1f us CPU/op "
           "| %.2fx | %s | %s |\n",
           name, RUNS, ma->per_s, a[0].per_s, a[RUNS - 1].per_s, ma->cpu_s, ma->wall_s,
           cpu_us(ma), against, mb->per_s, b[0].per_s, b[RUNS - 1].per_s, mb->cpu_s, mb->wall_s,
           cpu_us(mb), ratio, tgt, target <= 0 ? "n/a" : ratio >= target ? "met" : "**missed**");
    fflush(stdout);
}

/* Is row name asked for on the command line (all are when none is named)? */
static int wanted(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return argc < 2;
}

int main(int argc, char **argv)
{
    bench_binary(argv[0], binary, sizeof binary);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    start_redis();
    srand(15);
    static const struct {
        const char *op, *name, *redis;
        int n;
    } ops[] = {
        {"set", "index update (index:s?board, 1 entry, 100,000-key board)", "ZADD", 200000},
        {"rank", "rank query (index:g?board KEY, 100,000 keys)", "ZREVRANK", 200000},
        {"top", "top-100 read (index:f?board {1, 100}, 100,000 keys)", "ZREVRANGE 0 99", 20000},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        rate a[RUNS], b[RUNS];
        int rank = strcmp(ops[i].op, "rank") == 0, echo = wanted(argc, argv, "echo");
        if (!wanted(argc, argv, ops[i].op) && !(rank && echo))
            continue;
        runs(redis_run, ops[i].op, ops[i].n, BOARD, b);
        if (wanted(argc, argv, ops[i].op)) {
            runs(index_run, ops[i].op, ops[i].n, BOARD, a);
            row(ops[i].name, a, b, ops[i].redis, 1.0);
        }
        if (rank && echo) { /* the control, against the same ZREVRANK runs */
            runs(index_run, "echo", ops[i].n, BOARD, a);
            row("control: stage echo answering a constant rank-shaped reply, no index "
                "(echo:g?board KEY): the request path alone", a, b, "ZREVRANK", 0);
        }
    }
    if (!wanted(argc, argv, "growth")) {
        stop_redis();
        return 0;
    }
    rate s10k[RUNS], s1m[RUNS], r10k[RUNS], r1m[RUNS];
    runs(index_run, "rank", 100000, 10000, s10k);
    runs(index_run, "rank", 100000, 1000000, s1m);
    runs(redis_run, "rank", 100000, 10000, r10k);
    runs(redis_run, "rank", 100000, 1000000, r1m);
    row("rank query growth: index at 1,000,000 entries (vs 10,000)", s1m, s10k, "at 10,000:",
        0.5);
    row("rank query growth: Redis ZREVRANK at 1,000,000 entries (vs 10,000)", r1m, r10k,
        "at 10,000:", 0);
    stop_redis();
    return 0;
}
