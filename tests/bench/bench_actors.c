/* Scale: memory per idle actor and spawn time, each beside the bare-state baselines in the
 * same run: luaL_newstate()+luaL_openlibs(), and our preloaded state alone (no actor). The
 * actors are real: a node spawns them, each runs its top level and then waits. */
#include "bench_spread.h"
#include "lua_actor.h"
#include "lua_chunks.h"
#include "lua_state.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_opts.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <lualib.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Bytes in use in the malloc heap (Lua states, actors, mailboxes: all of it is malloc'd).
 * RSS would miss memory that an earlier baseline freed and this one reused. */
static double rss_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

typedef struct per {
    double bytes, seconds, cpu; /* per state or actor; cpu: process CPU seconds */
    double own;                 /* the spawning thread's CPU seconds, per actor */
} per;

static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static per bare_states(int n)
{
    lua_State **s = malloc((size_t)n * sizeof *s);
    double m0 = rss_bytes(), t0 = bench_now();
    for (int i = 0; i < n; i++) {
        s[i] = luaL_newstate();
        luaL_openlibs(s[i]);
    }
    per p = {(rss_bytes() - m0) / n, (bench_now() - t0) / n, 0, 0};
    for (int i = 0; i < n; i++)
        lua_close(s[i]);
    free(s);
    return p;
}

static per our_states(int n, sn_log *log, const sn_lua_ctx *ctx)
{
    lua_State **s = malloc((size_t)n * sizeof *s);
    sn_lua_host *h = calloc((size_t)n, sizeof *h);
    double m0 = rss_bytes(), t0 = bench_now();
    for (int i = 0; i < n; i++) {
        h[i] = (sn_lua_host){.log = log, .who = "bench", .budget = 5, .mem_warn = 32u << 20,
                             .mem_cap = 64u << 20, .ctx = ctx};
        s[i] = sn_lua_new(&h[i]);
        sn_lua_run_preload(s[i], "preload", 0);
    }
    per p = {(rss_bytes() - m0) / n, (bench_now() - t0) / n, 0, 0};
    for (int i = 0; i < n; i++)
        lua_close(s[i]);
    free(s);
    free(h);
    return p;
}

/* A node with n idle actors, each having run a small top level that registers a handler. */
static per actors(int n, sn_log *log)
{
    sn_opts o = {.preload = "preload", .threads = 2, .log_level = SN_LOG_WARN,
                 .shutdown_ms = 600000}; /* closing 100,000 actors takes a while */
    sn_lua_ctx ctx = {.chunks = sn_lua_chunks_new(0, 0, 0)}; /* as main makes it */
    sn_vm_ops vm;
    sn_lua_actor_ops(&ctx, &vm);
    sn_node *node = sn_node_new(&o, log, &vm);
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_dostring(L, "return function () stage.waitfor('ping', function () return 'pong' end) end");
    sn_snapshot_opts so;
    sn_snapshot_opts_init(&so);
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    sn_snapshot_encode(L, -1, 1, &so, &buf, err, sizeof err);
    sleep(1); /* workers settled */
    double m0 = rss_bytes(), t0 = bench_now(), c0 = process_cpu(), o0 = thread_cpu();
    for (int i = 0; i < n; i++) {
        uint64_t id;
        if (sn_node_spawn(node, "idle", NULL, buf.data, buf.len, &id) != SN_OK) {
            fprintf(stderr, "bench: spawn %d failed\n", i);
            exit(1);
        }
    }
    double t = (bench_now() - t0) / n, c = (process_cpu() - c0) / n, own = (thread_cpu() - o0) / n;
    sleep(2); /* every top level has run */
    per p = {(rss_bytes() - m0) / n, t, c, own};
    sn_buf_fini(&buf);
    lua_close(L);
    sn_node_destroy(&node);
    sn_lua_chunks_destroy(&ctx.chunks);
    return p;
}

int main(int argc, char **argv)
{
    enum { RUNS = 3 };
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    sn_log *log = sn_log_new(stderr, SN_LOG_ERROR);
    bench_spread mem = {0}, mem_bare = {0}, mem_ratio = {0}, mem_ours = {0}, mem_ours_ratio = {0},
                 spawn = {0}, spawn_bare = {0}, spawn_ratio = {0}, spawn_cpu = {0},
                 spawn_own = {0};
    for (int r = 0; r < RUNS; r++) {
        per bare = bare_states(n / 10);
        sn_lua_ctx ctx = {.chunks = sn_lua_chunks_new(0, 0, 0)};
        per ours = our_states(n / 10, log, &ctx);
        sn_lua_chunks_destroy(&ctx.chunks);
        per act = actors(n, log);
        bench_spread_add(&mem, act.bytes / 1024);
        bench_spread_add(&mem_bare, bare.bytes / 1024);
        bench_spread_add(&mem_ratio, act.bytes / bare.bytes);
        bench_spread_add(&mem_ours, ours.bytes / 1024);
        bench_spread_add(&mem_ours_ratio, act.bytes / ours.bytes);
        bench_spread_add(&spawn, act.seconds * 1e6);
        bench_spread_add(&spawn_bare, bare.seconds * 1e6);
        bench_spread_add(&spawn_ratio, act.seconds / bare.seconds);
        bench_spread_add(&spawn_cpu, act.cpu * 1e6);
        bench_spread_add(&spawn_own, act.own * 1e6);
    }
    char name[200], extra[192];
    snprintf(name, sizeof name, "memory per idle actor, %d actors on one node, 2 workers (vs bare "
             "luaL_newstate+openlibs)", n);
    bench_row_spread("actors", name, &mem, &mem_bare, &mem_ratio, "KiB", NULL, 40.0 / 26.0, 1);
    bench_row_spread("actors", "memory per idle actor (vs our preloaded state alone)", &mem,
                     &mem_ours, &mem_ours_ratio, "KiB", NULL, 0, 1);
    bench_spread abs_mem = {0}, abs_spawn = {0};
    for (int i = 0; i < mem.n; i++) {
        bench_spread_add(&abs_mem, mem.v[i] / 40.0);
        bench_spread_add(&abs_spawn, spawn.v[i] / 100.0);
    }
    bench_row_spread("actors", "memory per idle actor, absolute (ratio: figure / 40 KiB)", &mem,
                     NULL, &abs_mem, "KiB", NULL, 1.0, 1);
    /* On a loaded VM the spawning thread waits for a core: its own CPU is what a spawn
     * costs, the whole process's adds the workers running the top levels. */
    snprintf(extra, sizeof extra, "CPU %.4g us (%.4g-%.4g), whole process; spawning thread "
             "%.4g us (%.4g-%.4g)", bench_spread_at(&spawn_cpu, 0),
             bench_spread_at(&spawn_cpu, -1), bench_spread_at(&spawn_cpu, 1),
             bench_spread_at(&spawn_own, 0), bench_spread_at(&spawn_own, -1),
             bench_spread_at(&spawn_own, 1));
    snprintf(name, sizeof name, "spawn time per actor, %d actors, 2 workers (vs bare "
             "luaL_newstate+openlibs)", n);
    bench_row_spread("actors", name, &spawn, &spawn_bare, &spawn_ratio, "us", extra, 0, 1);
    bench_row_spread("actors", "spawn time per actor, absolute (ratio: figure / 100 us)", &spawn,
                     NULL, &abs_spawn, "us", extra, 1.0, 1);
    sn_log_destroy(&log);
    return 0;
}
