/* sn_snapshot tests: round trips between two states, identity, functions, refusals with paths,
 * bombs, truncation, out-of-memory injection and a seeded property test. */
#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_hash.h"
#include "sn_snapshot.h"

/* ---- helpers ---- */

/* An allocator that fails growth after `countdown` allocations once armed; tracks the largest. */
typedef struct test_alloc {
    int armed;
    long countdown;
    size_t largest;
} test_alloc;

static void *test_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    test_alloc *ta = ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    size_t old = ptr ? osize : 0;
    if (nsize > old) {
        if (ta->armed && ta->countdown-- <= 0)
            return NULL;
        if (nsize > ta->largest)
            ta->largest = nsize;
    }
    return realloc(ptr, nsize);
}

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    cr_assert_not_null(L);
    luaL_openlibs(L);
    return L;
}

static void run(lua_State *L, const char *code)
{
    if (luaL_loadbuffer(L, code, strlen(code), "=test") || lua_pcall(L, 0, 0, 0))
        cr_assert_fail("Lua error: %s\nin: %s", lua_tostring(L, -1), code);
}

/* Runs `code` (a chunk returning values) in L, leaving its results on the stack. */
static int eval(lua_State *L, const char *code)
{
    int top = lua_gettop(L);
    if (luaL_loadbuffer(L, code, strlen(code), "=src") || lua_pcall(L, 0, LUA_MULTRET, 0))
        cr_assert_fail("Lua error: %s\nin: %s", lua_tostring(L, -1), code);
    return lua_gettop(L) - top;
}

static sn_snapshot_opts trusted_opts(void)
{
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1;
    return o;
}

/* Encodes the top n values of A, decodes into B (trusted), leaves them on B's stack. */
static void transfer(lua_State *A, int n, lua_State *B, sn_buf *buf)
{
    char err[256] = "";
    sn_snapshot_opts o = trusted_opts();
    int topA = lua_gettop(A), topB = lua_gettop(B), got = -1;
    sn_buf_reset(buf);
    int rc = sn_snapshot_encode(A, -n, n, &o, buf, err, sizeof err);
    cr_assert_eq(rc, SN_OK, "encode: %s", err);
    cr_assert_eq(lua_gettop(A), topA);
    rc = sn_snapshot_decode(B, buf->data, buf->len, &o, &got, err, sizeof err);
    cr_assert_eq(rc, SN_OK, "decode: %s", err);
    cr_assert_eq(got, n);
    cr_assert_eq(lua_gettop(B), topB + n);
}

/* Sends the results of `code` in a fresh A to B and stores them in B as globals v1..vn. */
static lua_State *send_to_fresh(const char *code, lua_State *B)
{
    lua_State *A = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    int n = eval(A, code);
    transfer(A, n, B, &buf);
    for (int i = n; i >= 1; i--) {
        char name[16];
        snprintf(name, sizeof name, "v%d", i);
        lua_setglobal(B, name);
    }
    sn_buf_fini(&buf);
    return A;
}

typedef struct pairs_seen {
    const void *a[4096], *b[4096];
    int n;
} pairs_seen;

/* Deep equality across states, floats bit-exact, tables by structure with identity kept:
 * the same table in A must map to the same table in B, and only to it. */
static int deep_eq(lua_State *A, int ia, lua_State *B, int ib, pairs_seen *s)
{
    ia = lua_absindex(A, ia);
    ib = lua_absindex(B, ib);
    int t = lua_type(A, ia);
    if (t != lua_type(B, ib))
        return 0;
    switch (t) {
    case LUA_TNIL:
        return 1;
    case LUA_TBOOLEAN:
        return lua_toboolean(A, ia) == lua_toboolean(B, ib);
    case LUA_TNUMBER:
        if (lua_isinteger(A, ia) != lua_isinteger(B, ib))
            return 0;
        if (lua_isinteger(A, ia))
            return lua_tointeger(A, ia) == lua_tointeger(B, ib);
        {
            double x = lua_tonumber(A, ia), y = lua_tonumber(B, ib);
            return memcmp(&x, &y, sizeof x) == 0;
        }
    case LUA_TSTRING: {
        size_t na, nb;
        const char *sa = lua_tolstring(A, ia, &na), *sb = lua_tolstring(B, ib, &nb);
        return na == nb && memcmp(sa, sb, na) == 0;
    }
    case LUA_TFUNCTION:
        return lua_iscfunction(A, ia) == lua_iscfunction(B, ib);
    case LUA_TTABLE:
        break;
    default:
        return 0;
    }
    const void *pa = lua_topointer(A, ia), *pb = lua_topointer(B, ib);
    for (int i = 0; i < s->n; i++)
        if (s->a[i] == pa || s->b[i] == pb)
            return s->a[i] == pa && s->b[i] == pb;
    cr_assert_lt(s->n, 4096);
    s->a[s->n] = pa;
    s->b[s->n] = pb;
    s->n++;
    lua_checkstack(A, 8);
    lua_checkstack(B, 8);
    int count_a = 0, count_b = 0;
    lua_pushnil(B);
    while (lua_next(B, ib)) {
        count_b++;
        lua_pop(B, 1);
    }
    lua_pushnil(A);
    while (lua_next(A, ia)) {
        count_a++;
        switch (lua_type(A, -2)) {
        case LUA_TSTRING: {
            size_t n;
            const char *k = lua_tolstring(A, -2, &n);
            lua_pushlstring(B, k, n);
            break;
        }
        case LUA_TNUMBER:
            if (lua_isinteger(A, -2))
                lua_pushinteger(B, lua_tointeger(A, -2));
            else
                lua_pushnumber(B, lua_tonumber(A, -2));
            break;
        case LUA_TBOOLEAN:
            lua_pushboolean(B, lua_toboolean(A, -2));
            break;
        default:
            lua_pop(A, 1); /* keys that are objects: counted only */
            continue;
        }
        lua_rawget(B, ib);
        int eq = deep_eq(A, -1, B, -1, s);
        lua_pop(B, 1);
        lua_pop(A, 1);
        if (!eq) {
            lua_pop(A, 1);
            return 0;
        }
    }
    if (count_a != count_b)
        return 0;
    int ma = lua_getmetatable(A, ia), mb = lua_getmetatable(B, ib);
    int eq = ma == mb && (!ma || deep_eq(A, -1, B, -1, s));
    if (ma)
        lua_pop(A, 1);
    if (mb)
        lua_pop(B, 1);
    return eq;
}

/* Round-trips the results of `code` from a fresh state to another fresh state and compares. */
static void roundtrip_eq(const char *code)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    int n = eval(A, code);
    transfer(A, n, B, &buf);
    pairs_seen *s = calloc(1, sizeof *s);
    for (int i = 1; i <= n; i++)
        cr_assert(deep_eq(A, -n - 1 + i, B, -n - 1 + i, s), "value %d of `%s` differs", i, code);
    free(s);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

/* Encodes the results of `code` and expects an error code and exact message. */
static void expect_refusal(lua_State *A, int n, int want_rc, const char *want_msg, int arg_base)
{
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256] = "";
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.arg_base = arg_base;
    int top = lua_gettop(A);
    int rc = sn_snapshot_encode(A, -n, n, &o, &buf, err, sizeof err);
    cr_assert_eq(rc, want_rc, "rc %d (%s)", rc, err);
    cr_assert_str_eq(err, want_msg);
    cr_assert_eq(lua_gettop(A), top);
    cr_assert_eq(buf.len, 0);
    sn_buf_fini(&buf);
}

static int decode_bytes(lua_State *L, const void *data, size_t len, int trusted, char *err,
                        size_t errlen)
{
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = trusted;
    int n = -1, top = lua_gettop(L);
    int rc = sn_snapshot_decode(L, data, len, &o, &n, err, errlen);
    if (rc != SN_OK) {
        cr_assert_eq(lua_gettop(L), top, "decode error left values on the stack");
        cr_assert_eq(n, 0);
    } else {
        cr_assert_eq(lua_gettop(L), top + n);
        lua_settop(L, top);
    }
    return rc;
}

/* ---- hash ---- */

Test(snapshot, murmur3_vectors)
{
    uint64_t h[2];
    const char *fox = "The quick brown fox jumps over the lazy dog";
    sn_hash_murmur3_128(fox, strlen(fox), 2538058380u, h);
    cr_assert_eq(h[0], 0x738a7f3bd2633121ULL);
    cr_assert_eq(h[1], 0xf94573727ec016e5ULL);
    sn_hash_murmur3_128("", 0, 2538058380u, h);
    cr_assert_eq(h[0], 0x392b208a1daabbb3ULL);
    cr_assert_eq(h[1], 0x93b0608fe302957aULL);
    sn_hash_murmur3_128("hello", 5, 0, h);
    cr_assert_eq(h[0], 0xcbd8a7b341bd9b02ULL);
    cr_assert_eq(h[1], 0x5b1e906a48ae1d19ULL);
}

/* ---- scalars and tables ---- */

Test(snapshot, scalars)
{
    roundtrip_eq("return nil, true, false, 0, -1, 127, 128, -32, -33, 255, 256, 65535, 65536,"
                 " 2^31, -2^31, 4294967295, 4294967296, math.maxinteger, math.mininteger,"
                 " (1 << 53) + 1, -((1 << 53) + 1), 1.5, -0.0, 1/0, -1/0, 0.1, 5e-324, 2^53");
    roundtrip_eq("return '', 'a', ('x'):rep(31), ('y'):rep(32), ('z'):rep(255), ('w'):rep(256),"
                 " ('v'):rep(65536), '\\0\\1\\255 bytes \\0'");
}

Test(snapshot, float_bits_exact)
{
    const uint64_t patterns[] = {0x8000000000000000ULL, 0x7ff0000000000000ULL,
                                 0xfff0000000000000ULL, 0x7ff8000000000abcULL,
                                 0xfff4000000000001ULL, 0x7ff0000000000001ULL, 1};
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    int n = (int)(sizeof patterns / sizeof patterns[0]);
    for (int i = 0; i < n; i++) {
        double d;
        memcpy(&d, &patterns[i], sizeof d);
        lua_pushnumber(A, d);
    }
    transfer(A, n, B, &buf);
    for (int i = 0; i < n; i++) {
        cr_assert(!lua_isinteger(B, i + 1));
        double d = lua_tonumber(B, i + 1);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        cr_assert_eq(bits, patterns[i], "pattern %d: %llx", i, (unsigned long long)bits);
    }
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

Test(snapshot, tables)
{
    roundtrip_eq("return {}, {1, 2, 3}, {x = 1, y = 'two'}, {1, 2, 3, n = 3},"
                 " {[1] = 'a', [3] = 'c'}, {[1] = 1, [100] = 100, [-5] = -5, [0] = 0},"
                 " {[1.5] = true, [true] = false, [false] = 1}, {{{}}, {{}, {}}}");
    lua_State *B = new_state();
    lua_State *A = send_to_fresh("local t = {1, 2, nil, 4}; t[2] = nil; return t, {nil, nil, 3}",
                                 B);
    run(B, "assert(v1[1] == 1 and v1[2] == nil and v1[3] == nil and v1[4] == 4)\n"
           "local n = 0 for _ in pairs(v1) do n = n + 1 end assert(n == 2)\n"
           "assert(v2[3] == 3 and v2[1] == nil and next(v2) == 3)");
    lua_close(A);
    lua_close(B);
}

Test(snapshot, ten_megabyte_string)
{
    roundtrip_eq("return ('0123456789'):rep(1024 * 1024)");
}

Test(snapshot, depth_limit)
{
    const char *nest = "local function nest(n) local t = {} for i = 2, n do t = {t} end return t"
                       " end ";
    char code[256];
    snprintf(code, sizeof code, "%s return nest(32)", nest);
    roundtrip_eq(code);
    lua_State *A = new_state();
    snprintf(code, sizeof code, "%s return nest(33)", nest);
    eval(A, code);
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, NULL, &buf, err, sizeof err), SN_ELIMIT);
    cr_assert(strstr(err, "nesting deeper than 32"), "%s", err);
    cr_assert_eq(buf.len, 0);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.max_depth = 200;
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, &o, &buf, err, sizeof err), SN_OK);
    /* The 33-deep snapshot is refused by a default decoder and accepted with a higher limit. */
    lua_State *B = new_state();
    int n;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, NULL, &n, err, sizeof err), SN_ELIMIT);
    cr_assert_eq(lua_gettop(B), 0);
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_OK);
    o.max_depth = 201;
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, &o, &buf, err, sizeof err), SN_EINVAL);
    o.max_depth = 0;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_EINVAL);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

Test(snapshot, cycles_and_shared_tables)
{
    roundtrip_eq("local t = {} t.self = t t[t] = 1 return t");
    roundtrip_eq("local a = {1} local t = {a, a, {inner = a}} return t, a");
    lua_State *B = new_state();
    lua_State *A = send_to_fresh("local a = {} local t = {x = a, y = {a}} t.me = t return t, a", B);
    run(B, "assert(v1.x == v1.y[1] and v1.me == v1 and v2 == v1.x)");
    lua_close(A);
    lua_close(B);
}

Test(snapshot, metatables_shared)
{
    lua_State *B = new_state();
    lua_State *A = send_to_fresh(
        "local class = {__index = {kind = 'point'}, name = 'Point'}\n"
        "local p, q = setmetatable({x = 1}, class), setmetatable({x = 2}, class)\n"
        "local self = {} setmetatable(self, self) self.__index = {z = 9}\n"
        "return {p, q}, self",
        B);
    run(B, "assert(getmetatable(v1[1]) == getmetatable(v1[2]))\n"
           "assert(v1[1].kind == 'point' and v1[2].x == 2 and getmetatable(v1[1]).name == 'Point')\n"
           "assert(getmetatable(v2) == v2 and v2.z == 9)");
    lua_close(A);
    lua_close(B);
    roundtrip_eq("local mt = {} return setmetatable({1, 2}, mt), setmetatable({a = 1}, mt)");
}

/* A finalizer runs with hooks off, out of every budget: the decoder never sets a metatable
 * with __gc, trusted sender or not (docs/governor.md, Finalizers). */
Test(snapshot, metatable_with_gc_refused)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    int n = eval(A, "return {x = setmetatable({}, {__gc = function () end})}");
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    char err[256] = "";
    cr_assert_eq(sn_snapshot_encode(A, -n, n, &o, &buf, err, sizeof err), SN_OK, "%s", err);
    cr_assert_eq(decode_bytes(B, buf.data, buf.len, 1, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "metatable with __gc refused"), "%s", err);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

Test(snapshot, append_and_count)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    char err[128];
    eval(A, "return 1, 'two', {3}");
    cr_assert_eq(sn_snapshot_encode(A, 1, 1, NULL, &buf, err, sizeof err), SN_OK);
    size_t first = buf.len;
    cr_assert_eq(sn_snapshot_encode(A, 1, 3, NULL, &buf, err, sizeof err), SN_OK);
    int n = -1;
    cr_assert_eq(sn_snapshot_count(buf.data, first, &n), SN_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(sn_snapshot_count(buf.data + first, buf.len - first, &n), SN_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(sn_snapshot_decode(B, buf.data + first, buf.len - first, NULL, &n, err,
                                    sizeof err), SN_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(lua_tostring(B, 2), "two");
    cr_assert_eq(sn_snapshot_encode(A, 1, 0, NULL, &buf, err, sizeof err), SN_OK);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

/* ---- functions ---- */

Test(snapshot, closures_share_upvalue_cells)
{
    lua_State *B = new_state();
    lua_State *A = send_to_fresh(
        "local function counter() local n = 0\n"
        "  return function() n = n + 1 return n end, function() return n end end\n"
        "local inc, get = counter() inc()\n"
        "local inc2, get2 = counter()\n"
        "return {inc = inc, get = get}, {inc2, get2}",
        B);
    run(B, "assert(v1.get() == 1) v1.inc() v1.inc() assert(v1.get() == 3)\n"
           "assert(v2[2]() == 0) v2[1]() assert(v2[2]() == 1 and v1.get() == 3)");
    lua_close(A);
    lua_close(B);
}

Test(snapshot, recursive_and_vararg_functions)
{
    lua_State *B = new_state();
    lua_State *A = send_to_fresh(
        "local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end\n"
        "local function va(...) return select('#', ...), ... end\n"
        "return fact, va, fact",
        B);
    run(B, "assert(v1(10) == 3628800 and v1 == v3)\n"
           "local n, a, b = v2('x', nil) assert(n == 2 and a == 'x' and b == nil)");
    lua_close(A);
    lua_close(B);
}

Test(snapshot, env_rebound_to_receiver)
{
    lua_State *B = new_state();
    run(B, "greeting = 'from B'");
    lua_State *A = send_to_fresh("greeting = 'from A' local G = _G\n"
                                 "return function() return greeting end,\n"
                                 "  function() return G end, _G",
                                 B);
    run(B, "assert(v1() == 'from B' and v2() == _G and v3 == _G)");

    /* env_index binds a custom table as _ENV. */
    sn_buf buf;
    sn_buf_init(&buf);
    eval(A, "return function() return greeting end");
    char err[128];
    sn_snapshot_opts o = trusted_opts();
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, &o, &buf, err, sizeof err), SN_OK);
    eval(B, "return {greeting = 'from env'}");
    o.env_index = -1;
    int n;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_OK, "%s",
                 err);
    lua_call(B, 0, 1);
    cr_assert_str_eq(lua_tostring(B, -1), "from env");
    lua_settop(B, 0);
    lua_pushinteger(B, 1);
    o.env_index = 1;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_EINVAL);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

Test(snapshot, tracebacks_keep_line_numbers)
{
    lua_State *B = new_state();
    lua_State *A = send_to_fresh("return function()\n\n error('boom')\nend", B);
    run(B, "local ok, msg = pcall(v1) assert(not ok and msg:find('src:3: boom'), msg)");
    lua_close(A);
    lua_close(B);
}

Test(snapshot, stdlib_functions_by_name)
{
    lua_State *B = new_state();
    lua_State *A = send_to_fresh("local f = string.format return {print, string.format,"
                                 " math.floor, table.concat}, function(x) return f('%d', x) end",
                                 B);
    run(B, "assert(v1[1] == print and v1[2] == string.format and v1[3] == math.floor)\n"
           "assert(v1[4] == table.concat and v2(42) == '42')");
    lua_close(A);
    lua_close(B);
}

Test(snapshot, repeated_bytecode_stored_once)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    char err[128];
    eval(A, "local function mk(k) return function(x) return x * k + 12345 end end\n"
            "return mk(2), mk(3)");
    cr_assert_eq(sn_snapshot_encode(A, 1, 1, NULL, &buf, err, sizeof err), SN_OK);
    size_t one = buf.len;
    sn_buf_reset(&buf);
    cr_assert_eq(sn_snapshot_encode(A, 1, 2, NULL, &buf, err, sizeof err), SN_OK);
    cr_assert_lt(buf.len, one + 30, "second copy of the bytecode was not elided");
    sn_snapshot_opts o = trusted_opts();
    int n;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_OK, "%s",
                 err);
    lua_setglobal(B, "g");
    lua_setglobal(B, "f");
    run(B, "assert(f(1) == 12347 and g(1) == 12348 and f ~= g)");
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

static int not_stdlib_fn(lua_State *L)
{
    (void)L;
    return 0;
}

/* Past the 16 entries the encoder's and decoder's work maps hold in place: hundreds of shared
 * tables, closures sharing cells, and 40 bytecodes each sent twice keep identity and sharing. */
Test(snapshot, many_shared_objects_grow_the_work_maps)
{
    const char *code =
        "local shared, t = {}, {}\n"
        "for i = 1, 200 do shared[i] = {i = i} end\n"
        "for i = 1, 200 do t[#t + 1] = shared[i] t[#t + 1] = {shared[201 - i]} end\n"
        "local counters = {}\n"
        "for i = 1, 30 do local n = i\n"
        "  counters[i] = {function() n = n + 1 return n end, function() return n end} end\n"
        "local fns = {}\n"
        "for i = 1, 40 do\n"
        "  local mk = load('local k = ... return function() return k * 1000 + ' .. i .. ' end')\n"
        "  fns[#fns + 1] = mk(i) fns[#fns + 1] = mk(i + 1) end\n"
        "return t, counters, fns";
    lua_State *B = new_state();
    lua_State *A = send_to_fresh(code, B);
    run(B, "for i = 1, 200 do\n"
           "  assert(v1[2 * i - 1].i == i and v1[2 * i][1] == v1[2 * (201 - i) - 1]) end\n"
           "for i = 1, 30 do local inc, get = v2[i][1], v2[i][2]\n"
           "  assert(get() == i) inc() assert(get() == i + 1) end\n"
           "for i = 1, 40 do\n"
           "  assert(v3[2 * i - 1]() == i * 1000 + i and v3[2 * i]() == (i + 1) * 1000 + i) end");

    /* The same value under out-of-memory injection: every failure is SN_ENOMEM, never a crash
     * or a leak (the maps grow through the state's allocator). */
    test_alloc tb = {0};
    lua_State *C = lua_newstate(test_alloc_fn, &tb);
    luaL_openlibs(C);
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    sn_snapshot_opts o = trusted_opts();
    test_alloc ta = {0};
    lua_State *E = lua_newstate(test_alloc_fn, &ta);
    luaL_openlibs(E);
    int n = eval(E, code);
    int encode_ok = 0, failures = 0;
    for (long k = 0; k < 100000 && !encode_ok; k++) { /* the maps' growth fails in turn */
        sn_buf_reset(&buf);
        ta.armed = 1;
        ta.countdown = k;
        int rc = sn_snapshot_encode(E, -n, n, &o, &buf, err, sizeof err);
        ta.armed = 0;
        cr_assert(rc == SN_OK || rc == SN_ENOMEM, "encode rc %d at %ld: %s", rc, k, err);
        cr_assert_eq(lua_gettop(E), n);
        cr_assert(lua_gc(E, LUA_GCISRUNNING, 0), "collector left stopped at %ld", k);
        encode_ok = rc == SN_OK;
        if (!encode_ok) {
            cr_assert_eq(buf.len, 0);
            failures++;
        }
    }
    cr_assert(encode_ok);
    cr_assert_gt(failures, 0, "no allocation of the encoder was made to fail");
    int decode_ok = 0, got;
    for (long k = 0; k < 100000 && !decode_ok; k++) {
        tb.armed = 1;
        tb.countdown = k;
        int rc = sn_snapshot_decode(C, buf.data, buf.len, &o, &got, err, sizeof err);
        tb.armed = 0;
        cr_assert(rc == SN_OK || rc == SN_ENOMEM, "decode rc %d at %ld: %s", rc, k, err);
        decode_ok = rc == SN_OK;
        cr_assert_eq(lua_gettop(C), decode_ok ? n : 0);
    }
    cr_assert(decode_ok);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
    lua_close(C);
    lua_close(E);
}

static int stores;

static void count_store(void *ud, const unsigned char hash[16], const char *code, size_t len)
{
    (void)ud, (void)hash, (void)code, (void)len;
    stores++;
}

/* Bytecode bound for the function cache must match its hash (a hostile member could otherwise
 * file its code under the hash of another's); within one snapshot the hash is only a label. */
Test(snapshot, cached_bytecode_must_match_its_hash)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    char err[128];
    eval(A, "return function() return 7 end");
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, NULL, &buf, err, sizeof err), SN_OK, "%s", err);
    unsigned char *head = memchr(buf.data, 0xc9, buf.len);
    cr_assert_not_null(head);
    cr_assert_eq(head[5], 5, "not a function head");
    cr_assert_eq(head[6], 0, "not kind 0");
    head[7] ^= 0x40; /* the first byte of the hash */

    sn_snapshot_fcache fc = {.store = count_store};
    sn_snapshot_opts o = trusted_opts();
    o.fcache = &fc;
    int n;
    stores = 0;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "does not match its hash"), "%s", err);
    cr_assert_eq(stores, 0);
    cr_assert_eq(lua_gettop(B), 0);

    head[7] ^= 0x40;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_OK, "%s",
                 err);
    cr_assert_eq(stores, 1);
    lua_settop(B, 0);

    head[7] ^= 0x40; /* no cache: loaded, the label unchecked */
    o.fcache = NULL;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_OK, "%s",
                 err);
    lua_call(B, 0, 1);
    cr_assert_eq(lua_tointeger(B, -1), 7);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

/* The array of a function says how many upvalues follow; the loaded bytecode must have as
 * many, no fewer and no more. */
Test(snapshot, upvalue_count_must_match_the_bytecode)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    char err[128];
    eval(A, "local a, b = 1, 2 return function() return a + b end");
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, NULL, &buf, err, sizeof err), SN_OK, "%s", err);
    cr_assert_eq((unsigned char)buf.data[2], 0x93, "expected [head, a, b]");
    cr_assert_eq((unsigned char)buf.data[buf.len - 1], 0x02, "expected b last");
    sn_snapshot_opts o = trusted_opts();
    int n;
    buf.data[2] = (char)0x92; /* one upvalue fewer */
    buf.len--;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "function has 2 upvalues, the snapshot 1"), "%s", err);
    buf.data[2] = (char)0x94; /* one more */
    buf.data[buf.len++] = 0x02;
    buf.data[buf.len++] = (char)0xc0;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "function has 2 upvalues, the snapshot 3"), "%s", err);
    cr_assert_eq(lua_gettop(B), 0);
    buf.data[2] = (char)0x93;
    buf.len--;
    cr_assert_eq(sn_snapshot_decode(B, buf.data, buf.len, &o, &n, err, sizeof err), SN_OK, "%s",
                 err);
    lua_call(B, 0, 1);
    cr_assert_eq(lua_tointeger(B, -1), 3);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

/* The encoder stops the collector while it may allocate (its maps do not anchor objects) and
 * leaves it as it found it: running, or stopped by the caller, after success and failure. */
Test(snapshot, collector_left_as_found)
{
    lua_State *A = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    char err[128];
    eval(A, "return {print, string.format, t = {}}");
    cr_assert(lua_gc(A, LUA_GCISRUNNING, 0));
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, NULL, &buf, err, sizeof err), SN_OK, "%s", err);
    cr_assert(lua_gc(A, LUA_GCISRUNNING, 0), "encode left the collector stopped");
    lua_pushcfunction(A, not_stdlib_fn);
    cr_assert_eq(sn_snapshot_encode(A, -1, 1, NULL, &buf, err, sizeof err), SN_EINVAL);
    cr_assert(lua_gc(A, LUA_GCISRUNNING, 0), "failed encode left the collector stopped");
    lua_gc(A, LUA_GCSTOP, 0);
    cr_assert_eq(sn_snapshot_encode(A, -2, 1, NULL, &buf, err, sizeof err), SN_OK, "%s", err);
    cr_assert(!lua_gc(A, LUA_GCISRUNNING, 0), "encode restarted a collector its caller stopped");
    sn_buf_fini(&buf);
    lua_close(A);
}

/* ---- refusals ---- */

static int not_stdlib(lua_State *L)
{
    (void)L;
    return 0;
}

Test(snapshot, refusals_name_the_path)
{
    lua_State *A = new_state();
    eval(A, "return 1, {players = {{}, {}, {name = 'c', sock = io.stdout}}}");
    expect_refusal(A, 2, SN_EINVAL, "arg 2 .players[3].sock: userdata cannot be sent", 1);
    lua_settop(A, 0);
    eval(A, "return {co = {coroutine.create(print)}}");
    expect_refusal(A, 1, SN_EINVAL, "arg 1 .co[1]: coroutine cannot be sent", 1);
    lua_settop(A, 0);
    eval(A, "return {[1.5] = io.stderr}, {[true] = {['not ident'] = io.stdin}}");
    expect_refusal(A, 2, SN_EINVAL, "arg 1 [1.5]: userdata cannot be sent", 1);
    expect_refusal(A, 1, SN_EINVAL, "arg 3 [true][\"not ident\"]: userdata cannot be sent", 3);
    lua_settop(A, 0);
    eval(A, "return {a = {b = {}}}");
    lua_getfield(A, 1, "a");
    lua_getfield(A, -1, "b");
    lua_pushcfunction(A, not_stdlib);
    lua_setfield(A, -2, "fn");
    lua_settop(A, 1);
    expect_refusal(A, 1, SN_EINVAL, "arg 1 .a.b.fn: C function cannot be sent", 1);
    lua_settop(A, 0);
    luaL_loadstring(A, "local sock, n = ... return {fn = function() return sock, n end}");
    lua_pushcfunction(A, not_stdlib);
    lua_pushinteger(A, 1);
    lua_call(A, 2, 1);
    expect_refusal(A, 1, SN_EINVAL, "arg 1 .fn<upvalue 'sock'>: C function cannot be sent", 1);
    lua_settop(A, 0);
    lua_pushlightuserdata(A, A);
    expect_refusal(A, 1, SN_EINVAL, "arg 1: light userdata cannot be sent", 1);
    lua_settop(A, 0);
    eval(A, "return {[io.stdout] = 1}");
    expect_refusal(A, 1, SN_EINVAL, "arg 1 <key>: userdata cannot be sent", 1);
    lua_settop(A, 0);
    eval(A, "return setmetatable({}, {__index = io.stdout})");
    expect_refusal(A, 1, SN_EINVAL, "arg 1 <metatable>.__index: userdata cannot be sent", 1);
    lua_close(A);
}

Test(snapshot, untrusted_decode_refuses_functions)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    char err[128];
    /* a metatable is code too: its __gc runs when the receiver collects the table (issue 12) */
    const char *cases[] = {"return {1, {f = function() end}}", "return print", "return _G",
                           "return setmetatable({}, {__index = {x = 1}})",
                           "return {1, setmetatable({}, {})}"};
    for (int i = 0; i < 5; i++) {
        sn_buf_reset(&buf);
        eval(A, cases[i]);
        cr_assert_eq(sn_snapshot_encode(A, -1, 1, NULL, &buf, err, sizeof err), SN_OK);
        cr_assert_eq(decode_bytes(B, buf.data, buf.len, 0, err, sizeof err), SN_EUNTRUSTED,
                     "%s", cases[i]);
        cr_assert(strstr(err, "untrusted"), "%s", err);
        cr_assert_eq(decode_bytes(B, buf.data, buf.len, 1, err, sizeof err), SN_OK, "%s", err);
    }
    run(B, "collectgarbage()");
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

/* ---- hostile input ---- */

static void expect_bomb(const void *data, size_t len, int want_untrusted, int want_trusted)
{
    test_alloc ta = {0};
    lua_State *L = lua_newstate(test_alloc_fn, &ta);
    luaL_openlibs(L);
    char err[256];
    sn_buf warm;
    sn_buf_init(&warm);
    int n;
    /* Warm the per-state cache so the bomb itself is measured. */
    cr_assert_eq(sn_snapshot_decode(L, "\x01\x90", 2, NULL, &n, err, sizeof err), SN_OK);
    ta.largest = 0;
    for (int trusted = 0; trusted <= 1; trusted++) {
        int rc = decode_bytes(L, data, len, trusted, err, sizeof err);
        int want = trusted ? want_trusted : want_untrusted;
        cr_assert_eq(rc, want, "rc %d: %s", rc, err);
    }
    cr_assert_lt(ta.largest, 4096, "a bomb made a %zu-byte allocation", ta.largest);
    run(L, "assert(1 + 1 == 2)");
    lua_close(L);
}

Test(snapshot, bombs)
{
    /* count bomb without and with the version byte, at the top and nested */
    expect_bomb("\xdd\xff\xff\xff\xff", 5, SN_ENOTSUP, SN_ENOTSUP);
    expect_bomb("\x01\xdd\xff\xff\xff\xff", 6, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xdd\xff\xff\xff\xff", 7, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xdf\xff\xff\xff\xff", 7, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xde\x00\x03\x01\x02\x03\x04", 9, SN_EPROTO, SN_EPROTO);
    /* str32 / bin32 / ext32 lengths over the buffer */
    expect_bomb("\x01\x91\xdb\xff\xff\xff\xff", 7, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xc6\x00\x10\x00\x00xx", 9, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xc9\xff\xff\xff\xff\x03", 8, SN_EPROTO, SN_EPROTO);
    /* truncated function ext: refused untrusted, malformed trusted */
    expect_bomb("\x01\x91\x92\xc9\x00\x00\x01\x00\x05\x00", 10, SN_EUNTRUSTED, SN_EPROTO);
    /* back-reference forward, upvalue markers and heads out of place, unknown ext */
    expect_bomb("\x01\x91\xd4\x01\x00", 5, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xd4\x06\x00", 5, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xd4\x04\x00", 5, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xd4\x63\x00", 5, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xc1", 3, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 11, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\x81\xc0\x01", 5, SN_EPROTO, SN_EPROTO);
    expect_bomb("\x01\x91\x01\x02", 4, SN_EPROTO, SN_EPROTO);
    expect_bomb("", 0, SN_EPROTO, SN_EPROTO);
}

Test(snapshot, depth_bomb)
{
    size_t n = 100000;
    unsigned char *buf = malloc(n + 3);
    buf[0] = 1;
    buf[1] = 0x91;
    memset(buf + 2, 0x91, n);
    buf[n + 2] = 0xc0;
    expect_bomb(buf, n + 3, SN_ELIMIT, SN_ELIMIT);
    /* the same through maps and metatable heads */
    for (size_t i = 2; i + 2 <= n + 2; i += 2) {
        buf[i] = 0x81;
        buf[i + 1] = 0x01;
    }
    expect_bomb(buf, n + 3, SN_ELIMIT, SN_ELIMIT);
    free(buf);
}

Test(snapshot, other_version_is_refused)
{
    lua_State *L = new_state();
    char err[128];
    cr_assert_eq(decode_bytes(L, "\x02\x91\xc0", 3, 1, err, sizeof err), SN_ENOTSUP);
    cr_assert(strstr(err, "snapshot version 2, this build reads version 1"), "%s", err);
    int n;
    cr_assert_eq(sn_snapshot_count("\x02\x91\xc0", 3, &n), SN_ENOTSUP);
    lua_close(L);
}

static const char *complex_value =
    "local class = {__index = {k = 1}}\n"
    "local shared = {1, 2, 3}\n"
    "local function counter() local n = 0\n"
    "  return function() n = n + 1 return n end, function() return n end end\n"
    "local inc, get = counter()\n"
    "local t = {name = 'x', list = shared, again = shared, obj = setmetatable({}, class),\n"
    "  obj2 = setmetatable({1}, class), inc = inc, get = get, p = print, G = _G,\n"
    "  f = 1.25, big = math.mininteger, s = ('s'):rep(300), [2.5] = true}\n"
    "t.self = t\n"
    "return t, 'tail', inc";

Test(snapshot, truncation_at_every_offset)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    int n = eval(A, complex_value);
    cr_assert_eq(sn_snapshot_encode(A, -n, n, NULL, &buf, err, sizeof err), SN_OK, "%s", err);
    for (size_t len = 0; len < buf.len; len++) {
        char *copy = malloc(len ? len : 1); /* exact size so ASan sees any over-read */
        memcpy(copy, buf.data, len);
        for (int trusted = 0; trusted <= 1; trusted++)
            cr_assert_neq(decode_bytes(B, copy, len, trusted, err, sizeof err), SN_OK,
                          "prefix of %zu bytes decoded", len);
        free(copy);
    }
    cr_assert_eq(decode_bytes(B, buf.data, buf.len, 1, err, sizeof err), SN_OK, "%s", err);
    /* every single-byte corruption fails cleanly or decodes; never crashes */
    uint32_t seed = 12345;
    for (size_t i = 0; i < buf.len; i++) {
        char *copy = malloc(buf.len);
        memcpy(copy, buf.data, buf.len);
        seed = seed * 1103515245u + 12345u;
        copy[i] ^= (char)(1u << ((seed >> 16) & 7));
        decode_bytes(B, copy, buf.len, 0, err, sizeof err);
        free(copy);
    }
    run(B, "assert(select('#', 1, 2) == 2)");
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

Test(snapshot, out_of_memory_injection)
{
    test_alloc ta = {0}, tb = {0};
    lua_State *A = lua_newstate(test_alloc_fn, &ta), *B = lua_newstate(test_alloc_fn, &tb);
    luaL_openlibs(A);
    luaL_openlibs(B);
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    int n = eval(A, complex_value);
    int encode_ok = 0;
    for (long k = 0; k < 100000 && !encode_ok; k++) {
        sn_buf_reset(&buf);
        ta.armed = 1;
        ta.countdown = k;
        int rc = sn_snapshot_encode(A, -n, n, NULL, &buf, err, sizeof err);
        ta.armed = 0;
        cr_assert(rc == SN_OK || rc == SN_ENOMEM, "encode rc %d at %ld: %s", rc, k, err);
        cr_assert_eq(lua_gettop(A), n);
        cr_assert(lua_gc(A, LUA_GCISRUNNING, 0), "collector left stopped at %ld", k);
        encode_ok = rc == SN_OK;
        if (!encode_ok)
            cr_assert_eq(buf.len, 0);
    }
    cr_assert(encode_ok);
    sn_snapshot_opts o = trusted_opts();
    int decode_ok = 0, got;
    for (long k = 0; k < 100000 && !decode_ok; k++) {
        tb.armed = 1;
        tb.countdown = k;
        int rc = sn_snapshot_decode(B, buf.data, buf.len, &o, &got, err, sizeof err);
        tb.armed = 0;
        cr_assert(rc == SN_OK || rc == SN_ENOMEM, "decode rc %d at %ld: %s", rc, k, err);
        decode_ok = rc == SN_OK;
        cr_assert_eq(lua_gettop(B), decode_ok ? n : 0);
    }
    cr_assert(decode_ok);
    lua_setglobal(B, "v3");
    lua_setglobal(B, "v2");
    lua_setglobal(B, "v1");
    run(B, "assert(v1.self == v1 and v1.list == v1.again and v1.obj.k == 1 and v2 == 'tail')\n"
           "v1.inc() assert(v1.get() == 1 and v3 == v1.inc)");
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}

/* ---- property test ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void gen_scalar(lua_State *L, uint64_t *s, int allow_nil)
{
    uint64_t r = rng_next(s);
    switch (r % (allow_nil ? 7 : 6)) {
    case 0: lua_pushboolean(L, (int)(r >> 8) & 1); break;
    case 1: lua_pushinteger(L, (lua_Integer)(int8_t)(r >> 8)); break;
    case 2: lua_pushinteger(L, (lua_Integer)rng_next(s) >> (r >> 8) % 64); break;
    case 3: {
        uint64_t bits = rng_next(s);
        double d;
        memcpy(&d, &bits, sizeof d);
        if (d != d && !allow_nil)
            d = 0.5; /* NaN cannot be a key */
        lua_pushnumber(L, d);
        break;
    }
    case 4:
    case 5: {
        char str[300];
        size_t n = (r >> 8) % (r & 0x100 ? 300 : 12);
        for (size_t i = 0; i < n; i++)
            str[i] = (char)(rng_next(s) & (r & 0x200 ? 0xff : 0x07));
        lua_pushlstring(L, str, n);
        break;
    }
    default: lua_pushnil(L); break;
    }
}

/* Pushes a random value; `pool` (a stack index) collects tables for sharing and cycles. */
static void gen_value(lua_State *L, uint64_t *s, int depth, int pool)
{
    lua_checkstack(L, 8);
    uint64_t r = rng_next(s);
    int npool = (int)lua_rawlen(L, pool);
    if (depth < 6 && r % 3 == 0) {
        lua_createtable(L, 0, 0);
        lua_pushvalue(L, -1);
        lua_rawseti(L, pool, npool + 1);
        int narr = (int)((r >> 8) % 6), nrec = (int)((r >> 16) % 6);
        for (int i = 1; i <= narr; i++) {
            gen_value(L, s, depth + 1, pool);
            lua_rawseti(L, -2, (r >> 24) & 1 ? i * 3 : i);
        }
        for (int i = 0; i < nrec; i++) {
            gen_scalar(L, s, 0);
            gen_value(L, s, depth + 1, pool);
            lua_rawset(L, -3);
        }
        if ((r >> 30) % 8 == 0 && npool > 0) {
            lua_rawgeti(L, pool, (lua_Integer)((r >> 40) % (uint64_t)npool) + 1);
            lua_setmetatable(L, -2);
        }
    } else if (npool > 0 && r % 7 == 1) {
        lua_rawgeti(L, pool, (lua_Integer)((r >> 8) % (uint64_t)npool) + 1);
    } else {
        gen_scalar(L, s, 1);
    }
}

Test(snapshot, property_random_trees)
{
    lua_State *A = new_state(), *B = new_state();
    sn_buf buf;
    sn_buf_init(&buf);
    pairs_seen *seen = malloc(sizeof *seen);
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 3000; round++) {
        lua_settop(A, 0);
        lua_settop(B, 0);
        lua_newtable(A);
        int nvals = 1 + (int)(rng_next(&s) % 3);
        for (int i = 0; i < nvals; i++)
            gen_value(A, &s, 0, 1);
        transfer(A, nvals, B, &buf);
        seen->n = 0;
        for (int i = 0; i < nvals; i++)
            cr_assert(deep_eq(A, 2 + i, B, 1 + i, seen), "round %d value %d differs", round, i);
        if (round % 500 == 0) {
            lua_gc(A, LUA_GCCOLLECT, 0);
            lua_gc(B, LUA_GCCOLLECT, 0);
        }
    }
    free(seen);
    sn_buf_fini(&buf);
    lua_close(A);
    lua_close(B);
}
