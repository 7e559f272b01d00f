/* Sandbox costs, each against plain Lua 5.3 (a bare luaL_newstate + luaL_openlibs) in the
 * same run: coroutine snapshots, global access in the main chunk, and policy names. */
#include "bench_spread.h"
#include "lua_state.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

static lua_State *plain_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    return L;
}

static sn_lua_host host;

static lua_State *sandboxed_state(void)
{
    host = (sn_lua_host){.log = sn_log_new(stderr, SN_LOG_ERROR), .who = "bench"};
    return sn_lua_new(&host);
}

static void must(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(L, -1));
        exit(1);
    }
}

typedef struct job {
    lua_State *L;
    const char *setup; /* run once per state */
    const char *loop;  /* a chunk taking N as its argument */
} job;

/* Runs the loop chunk with iters; returns CPU seconds of this thread, wall in *wall. */
static double run_loop(job *j, long iters, double *wall)
{
    if (luaL_loadstring(j->L, j->loop) != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(j->L, -1));
        exit(1);
    }
    lua_pushinteger(j->L, iters);
    double t = bench_now(), c = bench_thread_cpu();
    if (lua_pcall(j->L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(j->L, -1));
        exit(1);
    }
    c = bench_thread_cpu() - c;
    *wall = bench_now() - t;
    return c;
}

static const char *only; /* argv[1]: run only the rows whose name contains it */

enum { RUNS = 5 };

/* Times the same code in a sandboxed and a plain state, RUNS times interleaved so that drift
 * hits both (each run the best of 3); prints one row in CPU ns/op (this thread's CPU time:
 * the machine is shared, and CPU time is what another process's load disturbs least), the
 * wall median beside it. */
static void compare(const char *name, const char *setup, const char *loop, long iters,
                    double target)
{
    if (only && !strstr(name, only))
        return;
    lua_State *S = sandboxed_state(), *P = plain_state();
    must(S, setup);
    must(P, setup);
    job js = {S, setup, loop}, jp = {P, setup, loop};
    double w;
    run_loop(&js, iters / 10, &w); /* warm up both */
    run_loop(&jp, iters / 10, &w);
    bench_spread ours = {0}, base = {0}, ratio = {0}, wall = {0};
    for (int round = 0; round < RUNS; round++) {
        double a = 1e30, b = 1e30, wa = 1e30; /* a run: the best of 3, against preemption */
        for (int rep = 0; rep < 3; rep++) {
            double x = run_loop(&js, iters, &w) / (double)iters;
            a = x < a ? x : a;
            wa = w < wa ? w : wa;
            x = run_loop(&jp, iters, &w) / (double)iters;
            b = x < b ? x : b;
        }
        bench_spread_add(&wall, wa / (double)iters * 1e9);
        bench_spread_add(&ours, a * 1e9);
        bench_spread_add(&base, b * 1e9);
        bench_spread_add(&ratio, a / b);
    }
    char full[256], extra[64];
    snprintf(full, sizeof full, "%s, 1 thread, CPU ns per op", name);
    snprintf(extra, sizeof extra, "wall %.4g ns", bench_spread_at(&wall, 0));
    bench_row_spread("sandbox", full, &ours, &base, &ratio, "ns", extra, target, 1);
    lua_close(S);
    lua_close(P);
    sn_log_destroy(&host.log);
}

static const char globals200[] = "for i = 1, 200 do _G['G' .. i] = i end X = 1";

int main(int argc, char **argv)
{
    only = argc > 1 ? argv[1] : NULL;
    compare("coroutine.create + first resume + finish, 200 globals", globals200,
            "local n = ... local cc, cr = coroutine.create, coroutine.resume\n"
            "local f = function () return X end\n"
            "for i = 1, n do cr(cc(f)) end",
            150000, 3.0);
    compare("coroutine.wrap + call, body writes a private global, 200 globals", globals200,
            "local n = ... local wrap = coroutine.wrap\n"
            "for i = 1, n do wrap(function () Y = X end)() end",
            100000, 3.0);
    compare("global reads and writes in the main chunk", globals200,
            "local n = ... for i = 1, n do G1 = G2 + i; G3 = G1 end", 2000000, 1.1);
    compare("global reads and writes in the main chunk, after a coroutine snapshot",
            "for i = 1, 200 do _G['G' .. i] = i end coroutine.wrap(function () end)()",
            "local n = ... for i = 1, n do G1 = G2 + i; G3 = G1 end", 2000000, 1.1);
    compare("policy name read+write inside a coroutine",
            "_ENV[''] = { 'P' } P = 0",
            "local n = ... coroutine.wrap(function () for i = 1, n do P = P + 1 end end)()",
            700000, 3.0);
    /* the state's allocator keeps freed small blocks (sn_small); plain Lua uses malloc */
    compare("64-byte strings made and dropped (the collector frees them)", "",
            "local n = ... local x, k = string.rep('a', 60), 0\n"
            "for i = 1, n do local s = x .. (i % 10000) k = k + #s end",
            1000000, 1.0);
    compare("private global read+write inside a coroutine", globals200,
            "local n = ... coroutine.wrap(function () for i = 1, n do G1 = G1 + 1 end end)()",
            2000000, 0);
    return 0;
}
