/* bench_snapshot: the snapshot codec against its baselines, each measured in the same run.
 * 1. a 5-field message state-to-state vs a direct C copy walk (no buffer)
 * 2. the same message vs lua-cjson encode+decode called from Lua
 * 3. a closure with 3 upvalues vs lua_dump+lua_load of the same function
 * 4. a ~1 MB table of 10,000 records: MB/s vs memcpy of the same byte count */
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "bench_spread.h"
#include "sn_snapshot.h"

typedef struct ctx {
    lua_State *src, *dst;
    sn_buf buf;
    sn_snapshot_opts opts;
    char *copy; /* memcpy target */
} ctx;

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    return L;
}

static void must(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code)) {
        fprintf(stderr, "bench_snapshot: %s\n", lua_tostring(L, -1));
        exit(1);
    }
}

static void roundtrip_once(ctx *c)
{
    char err[128];
    int n;
    sn_buf_reset(&c->buf);
    if (sn_snapshot_encode(c->src, 1, 1, &c->opts, &c->buf, err, sizeof err) ||
        sn_snapshot_decode(c->dst, c->buf.data, c->buf.len, &c->opts, &n, err, sizeof err)) {
        fprintf(stderr, "bench_snapshot: %s\n", err);
        exit(1);
    }
    lua_settop(c->dst, 0);
}

static double run_snapshot(void *arg, long iters)
{
    ctx *c = arg;
    double t0 = bench_thread_cpu();
    for (long i = 0; i < iters; i++)
        roundtrip_once(c);
    return bench_thread_cpu() - t0;
}

/* The baseline: what a codec-free state-to-state copy of plain data costs. */
static void copy_value(lua_State *from, int idx, lua_State *to)
{
    switch (lua_type(from, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(from, idx))
            lua_pushinteger(to, lua_tointeger(from, idx));
        else
            lua_pushnumber(to, lua_tonumber(from, idx));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(from, idx, &n);
        lua_pushlstring(to, s, n);
        break;
    }
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        break;
    case LUA_TTABLE:
        lua_newtable(to);
        lua_pushnil(from);
        while (lua_next(from, idx)) {
            int top = lua_gettop(from);
            copy_value(from, top - 1, to);
            copy_value(from, top, to);
            lua_rawset(to, -3);
            lua_pop(from, 1);
        }
        break;
    default:
        lua_pushnil(to);
    }
}

static double run_direct_copy(void *arg, long iters)
{
    ctx *c = arg;
    double t0 = bench_thread_cpu();
    for (long i = 0; i < iters; i++) {
        copy_value(c->src, 1, c->dst);
        lua_settop(c->dst, 0);
    }
    return bench_thread_cpu() - t0;
}

static double run_cjson(void *arg, long iters)
{
    ctx *c = arg;
    lua_getglobal(c->src, "cjson_loop");
    lua_pushinteger(c->src, iters);
    double t0 = bench_thread_cpu();
    lua_call(c->src, 1, 0);
    return bench_thread_cpu() - t0;
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    sn_buf *b = ud;
    if (b->cap - b->len < sz) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap - b->len < sz)
            cap *= 2;
        b->data = realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, sz);
    b->len += sz;
    return 0;
}

static double run_dump_load(void *arg, long iters)
{
    ctx *c = arg;
    double t0 = bench_thread_cpu();
    for (long i = 0; i < iters; i++) {
        sn_buf_reset(&c->buf);
        lua_dump(c->src, dump_writer, &c->buf, 0);
        if (luaL_loadbufferx(c->dst, c->buf.data, c->buf.len, "=f", "b")) {
            fprintf(stderr, "bench_snapshot: %s\n", lua_tostring(c->dst, -1));
            exit(1);
        }
        /* lua_load never runs the collector: alone, this loop kept every closure it loaded
         * (97 MB after 200,000) and timed page faults, and the next snapshot run, sharing the
         * state, paid for collecting them. lua_concat of one value is a no-op that runs the
         * collector at its normal pace, as the decoder's own allocations do. */
        lua_concat(c->dst, 1);
        lua_settop(c->dst, 0);
    }
    return bench_thread_cpu() - t0;
}

static double run_encode(void *arg, long iters)
{
    ctx *c = arg;
    char err[128];
    double t0 = bench_thread_cpu();
    for (long i = 0; i < iters; i++) {
        sn_buf_reset(&c->buf);
        sn_snapshot_encode(c->src, 1, 1, &c->opts, &c->buf, err, sizeof err);
    }
    return bench_thread_cpu() - t0;
}

static double run_decode(void *arg, long iters)
{
    ctx *c = arg;
    char err[128];
    int n;
    double t0 = bench_thread_cpu();
    for (long i = 0; i < iters; i++) {
        sn_snapshot_decode(c->dst, c->buf.data, c->buf.len, &c->opts, &n, err, sizeof err);
        lua_settop(c->dst, 0);
    }
    return bench_thread_cpu() - t0;
}

static double run_memcpy(void *arg, long iters)
{
    ctx *c = arg;
    double t0 = bench_thread_cpu();
    for (long i = 0; i < iters; i++) {
        memcpy(c->copy, c->buf.data, c->buf.len);
        __asm__ volatile("" : : "r"(c->copy) : "memory"); /* keep the copy */
    }
    return bench_thread_cpu() - t0;
}

enum { RUNS = 5 };

/* RUNS interleaved runs of a and its baseline b, each run the best of 3; figures in
 * seconds per iteration times scale, ratio a/b (or b/a when rate: figures are then
 * scale / seconds, a rate). */
static void pair(double (*a)(void *, long), long ia, double (*b)(void *, long), long ib, ctx *c,
                 double scale, int rate, bench_spread *fa, bench_spread *fb, bench_spread *r)
{
    for (int i = 0; i < RUNS; i++) {
        double x = bench_best(a, c, ia, 3), y = bench_best(b, c, ib, 3);
        bench_spread_add(fa, rate ? scale / x : x * scale);
        bench_spread_add(fb, rate ? scale / y : y * scale);
        bench_spread_add(r, x / y);
        if (rate)
            r->v[r->n - 1] = y / x;
    }
}

static const char *message = "return {from = 'alice', to = 'bob', seq = 42, ts = 1234.5,"
                             " data = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}";

int main(void)
{
    ctx c;
    sn_buf_init(&c.buf);
    sn_snapshot_opts_init(&c.opts);
    c.opts.trusted = 1;
    c.src = new_state();
    c.dst = new_state();

    must(c.src, message);
    bench_spread f = {0}, b = {0}, r = {0};
    pair(run_snapshot, 100000, run_direct_copy, 100000, &c, 1e6, 0, &f, &b, &r);
    bench_row_spread("snapshot", "message encode+decode, state to state, 1 thread, CPU", &f, &b,
                     &r, "us", NULL, 1.5, 1);
    double snap = bench_spread_at(&f, 0) / 1e6;

    /* lua-cjson is optional: without it the row says so and the other rows still run. */
    if (luaL_dostring(c.src, "local ok, cjson = pcall(require, 'cjson')\n"
                             "if not ok then return false end\n"
                             "function cjson_loop(n) local enc, dec = cjson.encode, cjson.decode\n"
                             "  for i = 1, n do local t = dec(enc(msg)) end end\n"
                             "return true") != LUA_OK ||
        !lua_toboolean(c.src, -1)) {
        printf("| snapshot | message encode+decode vs lua-cjson (from Lua): lua-cjson not installed "
               "| %.4g us | - | - | - | n/a |\n", snap * 1e6);
    } else {
        lua_pushvalue(c.src, 1);
        lua_setglobal(c.src, "msg");
        bench_spread cf = {0}, cb = {0}, cr = {0};
        pair(run_snapshot, 100000, run_cjson, 100000, &c, 1e6, 0, &cf, &cb, &cr);
        bench_row_spread("snapshot", "message encode+decode vs lua-cjson (from Lua), 1 thread, CPU",
                         &cf, &cb, &cr, "us", NULL, 1.0, 1);
    }
    lua_settop(c.src, 0);

    must(c.src, "local a, b, t = 40, 'two', {3}\n"
                "return function(x) return a + x, b, t[1] end");
    bench_spread ff = {0}, fb = {0}, fr = {0};
    pair(run_snapshot, 30000, run_dump_load, 30000, &c, 1e6, 0, &ff, &fb, &fr);
    bench_row_spread("snapshot", "closure with 3 upvalues encode+decode (vs lua_dump+lua_load), "
                     "1 thread, CPU", &ff, &fb, &fr, "us", NULL, 2.0, 1);
    lua_settop(c.src, 0);

    must(c.src, "local t = {} for i = 1, 10000 do t[i] = {id = i, name = 'user' .. i,\n"
                "  score = i * 1.5, active = i % 2 == 0, email = 'user' .. i .. '@example.org',\n"
                "  tags = {'alpha', 'beta', 'gamma'}, pos = {x = i, y = -i}} end return t");
    sn_buf_reset(&c.buf);
    char err[128];
    sn_snapshot_encode(c.src, 1, 1, &c.opts, &c.buf, err, sizeof err);
    double mb = (double)c.buf.len / 1e6;
    c.copy = malloc(c.buf.len);
    bench_spread ef = {0}, eb = {0}, er = {0}, df = {0}, db = {0}, dr = {0}, tf = {0}, tb = {0},
                 tr = {0};
    for (int i = 0; i < RUNS; i++) { /* MB/s: rates, each run the best of 3 */
        double tm = bench_best(run_memcpy, &c, 200, 3);
        double te = bench_best(run_encode, &c, 10, 3);
        double td = bench_best(run_decode, &c, 10, 3);
        bench_spread_add(&ef, mb / te), bench_spread_add(&eb, mb / tm);
        bench_spread_add(&er, tm / te);
        bench_spread_add(&df, mb / td), bench_spread_add(&db, mb / tm);
        bench_spread_add(&dr, tm / td);
        bench_spread_add(&tf, mb / (te + td)), bench_spread_add(&tb, mb / tm);
        bench_spread_add(&tr, tm / (te + td));
    }
    char name[128];
    snprintf(name, sizeof name, "%.2f MB table (10,000 records) encode (vs memcpy), 1 thread, CPU",
             mb);
    bench_row_spread("snapshot", name, &ef, &eb, &er, "MB/s", NULL, 0, 0);
    snprintf(name, sizeof name, "%.2f MB table (10,000 records) decode (vs memcpy), 1 thread, CPU",
             mb);
    bench_row_spread("snapshot", name, &df, &db, &dr, "MB/s", NULL, 0, 0);
    snprintf(name, sizeof name, "%.2f MB table (10,000 records) encode+decode (vs memcpy), "
             "1 thread, CPU", mb);
    bench_row_spread("snapshot", name, &tf, &tb, &tr, "MB/s", NULL, 0, 0);

    free(c.copy);
    sn_buf_fini(&c.buf);
    lua_close(c.src);
    lua_close(c.dst);
    return 0;
}
