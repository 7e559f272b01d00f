/* Scale: memory per idle actor and spawn time, each beside the bare-state baselines in the
 * same run: luaL_newstate()+luaL_openlibs(), and our preloaded state alone (no actor). The
 * actors are real: a node spawns them, each runs its top level and then waits. */
#include "bench.h"
#include "lua_actor.h"
#include "lua_state.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_opts.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <lualib.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

/* Bytes in use in the malloc heap (Lua states, actors, mailboxes: all of it is malloc'd).
 * RSS would miss memory that an earlier baseline freed and this one reused. */
static double rss_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

typedef struct per {
    double bytes, seconds;
} per;

static per bare_states(int n)
{
    lua_State **s = malloc((size_t)n * sizeof *s);
    double m0 = rss_bytes(), t0 = bench_now();
    for (int i = 0; i < n; i++) {
        s[i] = luaL_newstate();
        luaL_openlibs(s[i]);
    }
    per p = {(rss_bytes() - m0) / n, (bench_now() - t0) / n};
    for (int i = 0; i < n; i++)
        lua_close(s[i]);
    free(s);
    return p;
}

static per our_states(int n, sn_log *log)
{
    lua_State **s = malloc((size_t)n * sizeof *s);
    sn_lua_host *h = calloc((size_t)n, sizeof *h);
    double m0 = rss_bytes(), t0 = bench_now();
    for (int i = 0; i < n; i++) {
        h[i] = (sn_lua_host){.log = log, .who = "bench", .budget = 5, .mem_warn = 32u << 20,
                             .mem_cap = 64u << 20};
        s[i] = sn_lua_new(&h[i]);
        sn_lua_run_preload(s[i], "preload", 0);
    }
    per p = {(rss_bytes() - m0) / n, (bench_now() - t0) / n};
    for (int i = 0; i < n; i++)
        lua_close(s[i]);
    free(s);
    free(h);
    return p;
}

/* A node with n idle actors, each having run a small top level that registers a handler. */
static per actors(int n, sn_log *log)
{
    sn_opts o = {.preload = "preload", .threads = 2, .log_level = SN_LOG_WARN};
    sn_lua_ctx ctx = {0};
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
    double m0 = rss_bytes(), t0 = bench_now();
    for (int i = 0; i < n; i++) {
        uint64_t id;
        if (sn_node_spawn(node, "idle", NULL, buf.data, buf.len, &id) != SN_OK) {
            fprintf(stderr, "bench: spawn %d failed\n", i);
            exit(1);
        }
    }
    double t = (bench_now() - t0) / n;
    sleep(2); /* every top level has run */
    per p = {(rss_bytes() - m0) / n, t};
    sn_buf_fini(&buf);
    lua_close(L);
    sn_node_destroy(&node);
    return p;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    sn_log *log = sn_log_new(stderr, SN_LOG_ERROR);
    per bare = bare_states(n / 10);
    per ours = our_states(n / 10, log);
    per act = actors(n, log);
    char name[160];
    snprintf(name, sizeof name, "memory per idle actor, %d actors on one node (vs bare "
             "luaL_newstate+openlibs)", n);
    bench_row("actors", name, act.bytes / 1024, bare.bytes / 1024, "KiB", 40.0 / 26.0, 1);
    bench_row("actors", "memory per idle actor (vs our preloaded state alone)", act.bytes / 1024,
              ours.bytes / 1024, "KiB", 0, 1);
    printf("| actors | memory per idle actor, absolute (target <= 40 KiB) | %.1f KiB | - | - | <= 40 KiB | %s |\n",
           act.bytes / 1024, act.bytes / 1024 <= 40 ? "met" : "**missed**");
    bench_row("actors", "spawn time per actor (vs bare luaL_newstate+openlibs)", act.seconds * 1e6,
              bare.seconds * 1e6, "us", 0, 1);
    printf("| actors | spawn time per actor, absolute (target <= 100 us) | %.1f us | - | - | <= 100 us | %s |\n",
           act.seconds * 1e6, act.seconds * 1e6 <= 100 ? "met" : "**missed**");
    sn_log_destroy(&log);
    return 0;
}
