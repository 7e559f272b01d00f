/* Threads: stage.submit throughput, thread.new round trips, starred reads and __ updates,
 * each beside a plain C baseline measured in the same run. The Lua side runs in the real
 * stage-node binary (next to this program) on 2 workers. */
#include "bench_spread.h"
#include "sn_sched.h"

#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char binary[4096];
static double child_cpu; /* CPU seconds of the last run_script's process (user + system) */

static double children_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Reads "key V" from line into *value when the line is that key's. */
static void read_key(const char *line, const char *key, double *value)
{
    size_t k = key ? strlen(key) : 0;
    if (key && value && strncmp(line, key, k) == 0 && (line[k] == ' ' || line[k] == '\t'))
        *value = atof(line + k + 1);
}

/* Runs the binary on a script; returns wall seconds and the values of the lines "key1 V" and
 * "key2 V" (either key may be NULL). */
static double run_script_keys(const char *script, const char *key, double *value,
                              const char *key2, double *value2)
{
    char path[] = "/tmp/sn-bench-XXXXXX.lua";
    int fd = mkstemps(path, 4);
    if (fd < 0 || write(fd, script, strlen(script)) != (ssize_t)strlen(script)) {
        perror("bench: script");
        exit(1);
    }
    close(fd);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --threads 2 %s", binary, path);
    double t = bench_now(), c = children_cpu();
    FILE *p = popen(cmd, "r");
    char line[512];
    while (fgets(line, sizeof line, p)) {
        read_key(line, key, value);
        read_key(line, key2, value2);
    }
    int st = pclose(p);
    t = bench_now() - t;
    child_cpu = children_cpu() - c;
    unlink(path);
    if (st != 0) {
        fprintf(stderr, "bench: script failed: %s\n", script);
        exit(1);
    }
    return t;
}

static double run_script(const char *script, const char *key, double *value)
{
    return run_script_keys(script, key, value, NULL, NULL);
}

/* ---- C baselines ---- */

static atomic_long done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void empty_task(sn_task *t, void *w)
{
    (void)t;
    (void)w;
    atomic_fetch_add(&done, 1);
}

static double pool_throughput(long n) /* tasks per second */
{
    sn_sched_hooks h = {0};
    int err;
    sn_sched *s = sn_sched_new(2, &h, &err);
    sn_task *tasks = calloc((size_t)n, sizeof *tasks);
    atomic_store(&done, 0);
    double t = bench_now();
    for (long i = 0; i < n; i++) {
        tasks[i].run = empty_task;
        sn_sched_push(s, &tasks[i]);
    }
    while (atomic_load(&done) < n)
        ;
    t = bench_now() - t;
    sn_sched_destroy(&s);
    free(tasks);
    return (double)n / t;
}

static int ping_done;

static void ping_task(sn_task *t, void *w)
{
    (void)t;
    (void)w;
    pthread_mutex_lock(&lock);
    ping_done = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static double pool_round_trip(long n) /* seconds per round trip */
{
    sn_sched_hooks h = {0};
    int err;
    sn_sched *s = sn_sched_new(2, &h, &err);
    sn_task task = {.run = ping_task};
    double t = bench_now();
    for (long i = 0; i < n; i++) {
        ping_done = 0;
        sn_sched_push(s, &task);
        pthread_mutex_lock(&lock);
        while (!ping_done)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
    }
    t = bench_now() - t;
    sn_sched_destroy(&s);
    return t / (double)n;
}

static long counter;

static void *mutex_bump(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static double mutex_counter_rate(long per_thread) /* increments per second, 4 threads */
{
    pthread_t t[4];
    counter = 0;
    double t0 = bench_now();
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, mutex_bump, &per_thread);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 4.0 * (double)per_thread / (bench_now() - t0);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(binary, sizeof binary, "%s/stage-node", dirname(self));

    /* 1. empty stage.submit throughput: (T(N) - T(0)) / N removes start-up and exit. */
    enum { RUNS = 3 };
    const long N = 200000;
    char script[1024], extra[128];
    snprintf(script, sizeof script,
             "local f = function () end for i = 1, %ld do stage.submit(0, f) end", N);
    bench_spread rate = {0}, cpu = {0}, pool = {0}, ratio = {0};
    for (int r = 0; r < RUNS; r++) {
        double t0 = run_script("local f = function () end", NULL, NULL), c0 = child_cpu;
        double tn = run_script(script, NULL, NULL), cn = child_cpu;
        double x = pool_throughput(N);
        bench_spread_add(&rate, (double)N / (tn - t0));
        bench_spread_add(&cpu, (cn - c0) / (double)N * 1e6);
        bench_spread_add(&pool, x);
        bench_spread_add(&ratio, (double)N / (tn - t0) / x);
    }
    snprintf(extra, sizeof extra, "CPU %.3g us per job (%.3g-%.3g), node process, all threads",
             bench_spread_at(&cpu, 0), bench_spread_at(&cpu, -1), bench_spread_at(&cpu, 1));
    bench_row_spread("threads",
                     "empty stage.submit throughput, 2 workers (vs C pool, empty C task)",
                     &rate, &pool, &ratio, "jobs/s", extra, 0, 0);

    /* 2. thread.new round trip: start, return, to.waitfor callback, one after another. */
    bench_spread rt = {0}, prt = {0}, rtr = {0};
    for (int r = 0; r < RUNS; r++) {
        double x = 0;
        run_script("local n, t0 = 20000, process.clock\n"
                   "local function go(i)\n"
                   "  if i == n then print('rt', (process.clock - t0) / n * 1e6) return end\n"
                   "  thread.new(function (x) return x end, i)"
                   ".waitfor(function (x) go(x + 1) end)\n"
                   "end\n"
                   "go(0)\n",
                   "rt", &x);
        double y = pool_round_trip(20000) * 1e6;
        bench_spread_add(&rt, x);
        bench_spread_add(&prt, y);
        bench_spread_add(&rtr, x / y);
    }
    bench_row_spread("threads", "thread.new round trip, 2 workers (vs C pool push + condvar reply)",
                     &rt, &prt, &rtr, "us", NULL, 0, 1);

    /* 3. starred read of an unchanged 20-field table vs a plain global table field, each run
     * timing both loops in one script. */
    enum { READ_RUNS = 5 };
    bench_spread st = {0}, pl = {0}, str = {0};
    const char *reads =
        "_ENV[''] = { '*T' }\n"
        "local fields = {} for i = 1, 20 do fields['f' .. i] = i end\n"
        "T = fields P = fields\n"
        "local n, best = 1000000, {}\n"
        "for r = 1, 3 do\n" /* each figure the best of 3, against preemption */
        "  local t0 = os.clock()\n"
        "  for i = 1, n do local v = T end\n"
        "  local t1 = os.clock()\n"
        "  for i = 1, n do local v = P.f1 end\n"
        "  local t2 = os.clock()\n"
        "  best[1] = math.min(best[1] or 1e9, (t1 - t0) / n * 1e9)\n"
        "  best[2] = math.min(best[2] or 1e9, (t2 - t1) / n * 1e9)\n"
        "end\n"
        "print('starred', best[1]) print('plain', best[2])\n";
    for (int r = 0; r < READ_RUNS; r++) {
        double a = 0, b = 0;
        run_script_keys(reads, "starred", &a, "plain", &b);
        bench_spread_add(&st, a);
        bench_spread_add(&pl, b);
        bench_spread_add(&str, a / b);
    }
    bench_row_spread("threads",
                     "read of a starred 20-field table, unchanged (vs plain global field), CPU ns",
                     &st, &pl, &str, "ns", NULL, 3.0, 1);

    /* 4. __ increments from 4 jobs vs a C mutex-protected counter on 4 threads. */
    bench_spread inc = {0}, mx = {0}, incr = {0}, icpu = {0};
    for (int r = 0; r < RUNS; r++) {
        double x = 0;
        run_script("_ENV[''] = { '*C', '*D' } C, D = 0, 0\n"
                   "local per, t0 = 50000, process.clock\n"
                   "for j = 1, 4 do stage.submit(0, function (k)\n"
                   "  for i = 1, k do __('C', function (v) return v + 1 end) end\n"
                   "  __.D = function (d) return d + 1 end end, per) end\n"
                   "stage.submit(0, function (t)\n"
                   "  if D < 4 then return 1 end\n"
                   "  print('incr', C / (process.clock - t)) end, t0)\n",
                   "incr", &x);
        double y = mutex_counter_rate(1000000);
        bench_spread_add(&inc, x);
        bench_spread_add(&icpu, child_cpu / 200000.0 * 1e6);
        bench_spread_add(&mx, y);
        bench_spread_add(&incr, x / y);
    }
    snprintf(extra, sizeof extra, "CPU %.3g us per increment (%.3g-%.3g), whole run incl. start",
             bench_spread_at(&icpu, 0), bench_spread_at(&icpu, -1), bench_spread_at(&icpu, 1));
    bench_row_spread("threads",
                     "__ increments/s, 4 jobs on 2 workers (vs C mutex counter, 4 threads)",
                     &inc, &mx, &incr, "ops/s", extra, 0, 0);
    return 0;
}
