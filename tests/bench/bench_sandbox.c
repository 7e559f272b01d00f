/* Sandbox costs, each against plain Lua 5.3 (a bare luaL_newstate + luaL_openlibs) in the
 * same run: coroutine snapshots, global access in the main chunk, and policy names. */
#include "bench.h"
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

static double run_loop(void *arg, long iters)
{
    job *j = arg;
    if (luaL_loadstring(j->L, j->loop) != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(j->L, -1));
        exit(1);
    }
    lua_pushinteger(j->L, iters);
    double t = bench_now();
    if (lua_pcall(j->L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(j->L, -1));
        exit(1);
    }
    return bench_now() - t;
}

/* Times the same code in a sandboxed and a plain state; prints one row in ns/op. */
static const char *only; /* argv[1]: run only the rows whose name contains it */

static void compare(const char *name, const char *setup, const char *loop, long iters,
                    double target)
{
    if (only && !strstr(name, only))
        return;
    lua_State *S = sandboxed_state(), *P = plain_state();
    must(S, setup);
    must(P, setup);
    job js = {S, setup, loop}, jp = {P, setup, loop};
    run_loop(&js, iters / 10); /* warm up both */
    run_loop(&jp, iters / 10);
    double ours = 0, base = 0;
    for (int round = 0; round < 3; round++) { /* interleave, so drift hits both */
        double a = bench_best(run_loop, &js, iters, 1), b = bench_best(run_loop, &jp, iters, 1);
        if (round == 0 || a < ours) ours = a;
        if (round == 0 || b < base) base = b;
    }
    bench_row("sandbox", name, ours * 1e9, base * 1e9, "ns", target, 1);
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
            1000000, 3.0);
    compare("coroutine.wrap + call, body writes a private global, 200 globals", globals200,
            "local n = ... local wrap = coroutine.wrap\n"
            "for i = 1, n do wrap(function () Y = X end)() end",
            500000, 3.0);
    compare("global reads and writes in the main chunk", globals200,
            "local n = ... for i = 1, n do G1 = G2 + i; G3 = G1 end", 5000000, 1.1);
    compare("global reads and writes in the main chunk, after a coroutine snapshot",
            "for i = 1, 200 do _G['G' .. i] = i end coroutine.wrap(function () end)()",
            "local n = ... for i = 1, n do G1 = G2 + i; G3 = G1 end", 5000000, 1.1);
    compare("policy name read+write inside a coroutine",
            "_ENV[''] = { 'P' } P = 0",
            "local n = ... coroutine.wrap(function () for i = 1, n do P = P + 1 end end)()",
            5000000, 3.0);
    compare("private global read+write inside a coroutine", globals200,
            "local n = ... coroutine.wrap(function () for i = 1, n do G1 = G1 + 1 end end)()",
            5000000, 0);
    return 0;
}
