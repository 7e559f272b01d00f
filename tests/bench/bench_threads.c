/* Threads: stage.submit throughput, thread.new round trips, starred reads and __ updates,
 * each beside a plain C baseline measured in the same run. The Lua side runs in the real
 * stage-node binary (next to this program) on 2 workers. */
#include "bench.h"
#include "sn_sched.h"

#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char binary[4096];

/* Runs the binary on a script; returns wall seconds and the value of the line "key V". */
static double run_script(const char *script, const char *key, double *value)
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
    double t = bench_now();
    FILE *p = popen(cmd, "r");
    char line[512];
    while (fgets(line, sizeof line, p)) {
        size_t k = strlen(key);
        if (key && value && strncmp(line, key, k) == 0 && (line[k] == ' ' || line[k] == '\t'))
            *value = atof(line + k + 1);
    }
    int st = pclose(p);
    t = bench_now() - t;
    unlink(path);
    if (st != 0) {
        fprintf(stderr, "bench: script failed: %s\n", script);
        exit(1);
    }
    return t;
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
    const long N = 200000;
    char script[1024];
    snprintf(script, sizeof script,
             "local f = function () end for i = 1, %ld do stage.submit(0, f) end", N);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = run_script("local f = function () end", NULL, NULL);
        double tn = run_script(script, NULL, NULL);
        if (tn - t0 < best)
            best = tn - t0;
    }
    double submit_rate = (double)N / best;
    double pool_rate = 0;
    for (int r = 0; r < 3; r++) {
        double x = pool_throughput(N);
        if (x > pool_rate)
            pool_rate = x;
    }
    bench_row("threads", "empty stage.submit throughput, 2 workers (vs C pool, empty C task)",
              submit_rate, pool_rate, "jobs/s", 0, 0);

    /* 2. thread.new round trip: start, return, to.waitfor callback, one after another. */
    double rt = 0;
    run_script("local n, t0 = 20000, process.clock\n"
               "local function go(i)\n"
               "  if i == n then print('rt', (process.clock - t0) / n * 1e6) return end\n"
               "  thread.new(function (x) return x end, i).waitfor(function (x) go(x + 1) end)\n"
               "end\n"
               "go(0)\n",
               "rt", &rt);
    bench_row("threads", "thread.new round trip (vs C pool push + condvar reply)", rt,
              pool_round_trip(20000) * 1e6, "us", 0, 1);

    /* 3. starred read of an unchanged 20-field table vs a plain global table field. */
    double starred = 0, plain = 0;
    const char *reads =
        "_ENV[''] = { '*T' }\n"
        "local fields = {} for i = 1, 20 do fields['f' .. i] = i end\n"
        "T = fields P = fields\n"
        "local n = 2000000 local t0 = process.clock\n"
        "for i = 1, n do local v = T end\n"
        "print('starred', (process.clock - t0) / n * 1e9)\n"
        "t0 = process.clock\n"
        "for i = 1, n do local v = P.f1 end\n"
        "print('plain', (process.clock - t0) / n * 1e9)\n";
    run_script(reads, "starred", &starred);
    run_script(reads, "plain", &plain);
    bench_row("threads", "read of a starred 20-field table, unchanged (vs plain global field)",
              starred, plain, "ns", 3.0, 1);

    /* 4. __ increments from 4 jobs vs a C mutex-protected counter on 4 threads. */
    double incr = 0;
    run_script("_ENV[''] = { '*C', '*D' } C, D = 0, 0\n"
               "local per, t0 = 50000, process.clock\n"
               "for j = 1, 4 do stage.submit(0, function (k)\n"
               "  for i = 1, k do __('C', function (v) return v + 1 end) end\n"
               "  __.D = function (d) return d + 1 end end, per) end\n"
               "stage.submit(0, function (t)\n"
               "  if D < 4 then return 1 end\n"
               "  print('incr', C / (process.clock - t)) end, t0)\n",
               "incr", &incr);
    bench_row("threads", "__ increments/s, 4 jobs on 2 workers (vs C mutex counter, 4 threads)",
              incr, mutex_counter_rate(1000000), "ops/s", 0, 0);
    return 0;
}
