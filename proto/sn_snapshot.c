/* sn_snapshot: encoder and decoder of the snapshot format (proto/SNAPSHOT.md).
 * Bytes are written and read with sn_mpack; the reader is a bounds-checked walk over the input.
 * Both run under lua_pcall so that a Lua memory error becomes SN_ENOMEM, never an abort. */
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_hash.h"
#include "sn_mpack.h"
#include "sn_snapshot_error.h"

/* Ext types of the format; numbers are part of version 1. */
enum {
    EXT_REF = 1,      /* back-reference to an earlier table or function */
    EXT_GLOBALS = 2,  /* the sender's globals; the receiver's env table */
    EXT_CFUNC = 3,    /* a standard-library C function, by name */
    EXT_TABLE_MT = 4, /* head of [head, body, metatable] */
    EXT_FUNC = 5,     /* head of [head, upvalue...]: kind, hash, bytecode */
    EXT_ENV = 6,      /* upvalue slot: bind to the receiver's env table */
    EXT_UPREF = 7     /* upvalue slot: share the cell of an earlier function's upvalue */
};

enum { FUNC_BYTECODE = 0, FUNC_SAME = 1, FUNC_HASH_ONLY = 2 };
enum { HASH_LEN = 16, FUNC_HEAD_LEN = 1 + HASH_LEN };
#define HASH_SEED 0u

/* Per-state tables live in one registry table; these are its array slots. Slots are in the
 * array part, so clearing them after an error never allocates. The encoder's identity maps and
 * both bytecode maps are C (idmap below); only the decoder's objects, which must hold Lua
 * references, and the C-function name maps are Lua tables. */
enum {
    SLOT_DEC_OBJS = 1,
    SLOT_FN2NAME,
    SLOT_NAME2FN,
    SLOT_BUSY,
    CACHE_SLOTS = SLOT_BUSY
};
/* Work tables that held more entries than this are dropped instead of cleared, so one huge
 * snapshot does not make every later small one walk a huge table. */
#define REUSE_MAX 64

/* Lets -Wformat check the printf-like helpers below. */
#define SN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

static const char cache_key = 0; /* its address names the registry entry */
static const char transparent_key = 0; /* registry: weak set of metatables not encoded */

enum { PATH_MAX_LEN = 240, WHAT_LEN = 120 };

void sn_snapshot_weak_add(lua_State *L, const void *key, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, key);
    }
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

int sn_snapshot_weak_has(lua_State *L, const void *key, int idx)
{
    idx = lua_absindex(L, idx);
    int yes = 0;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) {
        lua_pushvalue(L, idx);
        yes = lua_rawget(L, -2) != LUA_TNIL;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return yes;
}

void sn_snapshot_transparent(lua_State *L, int idx)
{
    sn_snapshot_weak_add(L, &transparent_key, idx);
}

/* 1 when the metatable at idx was made transparent. Never raises. */
static int is_transparent(lua_State *L, int idx)
{
    return sn_snapshot_weak_has(L, &transparent_key, idx);
}

void sn_snapshot_opts_init(sn_snapshot_opts *o)
{
    o->max_depth = SN_SNAPSHOT_DEPTH_DEFAULT;
    o->trusted = 0;
    o->env_index = 0;
    o->arg_base = 1;
    o->fcache = NULL;
    o->functions = NULL;
}

SN_PRINTF(3, 4) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int check_opts(const sn_snapshot_opts *o, char *err, size_t errlen)
{
    if (o->max_depth < 1 || o->max_depth > SN_SNAPSHOT_DEPTH_MAX) {
        set_err(err, errlen, "max_depth %d is outside 1..%d", o->max_depth,
                SN_SNAPSHOT_DEPTH_MAX);
        return SN_EINVAL;
    }
    return SN_OK;
}

/* ---- per-state cache ---------------------------------------------------------------------- */

/* Pushes the cache table, creating it on first use. Raises on out-of-memory (under pcall). */
static void cache_push(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, CACHE_SLOTS, 0);
    for (int i = 1; i <= CACHE_SLOTS; i++) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, -2, i);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
}

/* Takes the cache for this call: 1 if it was free (now marked busy), 0 if a re-entrant call
 * (e.g. from a finalizer) already holds it; then the caller uses fresh tables. */
static int cache_take(lua_State *L, int cache)
{
    lua_rawgeti(L, cache, SLOT_BUSY);
    int busy = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (busy)
        return 0;
    lua_pushboolean(L, 1);
    lua_rawseti(L, cache, SLOT_BUSY);
    return 1;
}

/* Pushes the work table of slot, reusing the cached one when this call owns the cache. */
static int work_table(lua_State *L, int cache, int owns, int slot)
{
    if (owns) {
        if (lua_rawgeti(L, cache, slot) == LUA_TTABLE)
            return lua_gettop(L);
        lua_pop(L, 1);
    }
    lua_newtable(L);
    if (owns) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, cache, slot);
    }
    return lua_gettop(L);
}

/* Outside any pcall: empties (ok and at most REUSE_MAX entries) or drops the work table of
 * slot, whose entries are exactly 1..used, and frees the cache (at cache_at, or looked up when
 * that is not a table: the call created it). Setting existing keys to nil
 * allocates nothing, so this cannot raise. */
static void cache_release(lua_State *L, int cache_at, int owns, int ok, int slot,
                          lua_Integer used)
{
    if (!owns)
        return;
    if (lua_type(L, cache_at) == LUA_TTABLE) {
        lua_pushvalue(L, cache_at);
    } else if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    int cache = lua_gettop(L);
    if (ok && used <= REUSE_MAX) {
        if (lua_rawgeti(L, cache, slot) == LUA_TTABLE)
            for (lua_Integer i = 1; i <= used; i++) {
                lua_pushnil(L);
                lua_rawseti(L, -2, i);
            }
        lua_pop(L, 1);
    } else {
        lua_pushboolean(L, 0);
        lua_rawseti(L, cache, slot);
    }
    lua_pushboolean(L, 0);
    lua_rawseti(L, cache, SLOT_BUSY);
    lua_pop(L, 1);
}

/* ---- identity maps ------------------------------------------------------------------------ */

/* One call's map from a 128-bit key (an object's address, an upvalue cell's id, or a bytecode
 * hash) to a number. It used to be registry tables: clearing them after each call (a lua_next
 * walk) and the lua_rawget/rawset per object cost more than the lua_dump of a small closure.
 * Open addressing, linear probing; the first MAP_INLINE slots live in the map itself so a
 * small snapshot never allocates; bigger ones go through the state's allocator (counted by the
 * governor) and are freed when the call returns, whatever its outcome. */
enum { MAP_INLINE = 8, MAP_INLINE_BITS = 3 };
typedef struct map_slot {
    uint64_t k0, k1, v; /* v is the value + 1: 0 marks an empty slot */
} map_slot;
typedef struct idmap {
    map_slot *s;
    size_t cap, n; /* cap 0: not yet used */
    int bits;
    map_slot inl[MAP_INLINE];
} idmap;

static size_t map_index(const idmap *m, uint64_t k0, uint64_t k1)
{
    uint64_t h = (k0 ^ (k1 * 0xc2b2ae3d27d4eb4fULL)) * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> (64 - m->bits));
}

/* 1 and *v when key is in m, else 0. */
static int map_get(const idmap *m, uint64_t k0, uint64_t k1, uint64_t *v)
{
    if (m->n == 0)
        return 0;
    for (size_t i = map_index(m, k0, k1);; i = (i + 1) & (m->cap - 1)) {
        const map_slot *s = &m->s[i];
        if (s->v == 0)
            return 0;
        if (s->k0 == k0 && s->k1 == k1) {
            *v = s->v - 1;
            return 1;
        }
    }
}

static void map_insert(idmap *m, uint64_t k0, uint64_t k1, uint64_t v)
{
    size_t i = map_index(m, k0, k1);
    while (m->s[i].v != 0)
        i = (i + 1) & (m->cap - 1);
    m->s[i] = (map_slot){k0, k1, v + 1};
    m->n++;
}

/* Adds key (not in m) with value v, keeping the load at most 3/4. SN_OK or SN_ENOMEM. */
static int map_put(lua_State *L, idmap *m, uint64_t k0, uint64_t k1, uint64_t v)
{
    if (m->cap == 0) {
        memset(m->inl, 0, sizeof m->inl);
        m->s = m->inl;
        m->cap = MAP_INLINE;
        m->bits = MAP_INLINE_BITS;
    }
    if ((m->n + 1) * 4 > m->cap * 3) {
        void *ud;
        lua_Alloc alloc = lua_getallocf(L, &ud);
        size_t cap = m->cap * 2;
        if (cap > SIZE_MAX / sizeof(map_slot))
            return SN_ENOMEM;
        map_slot *s = alloc(ud, NULL, 0, cap * sizeof(map_slot)), *old = m->s;
        if (!s)
            return SN_ENOMEM;
        memset(s, 0, cap * sizeof(map_slot));
        size_t oldcap = m->cap;
        m->s = s;
        m->cap = cap;
        m->bits++;
        m->n = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].v != 0)
                map_insert(m, old[i].k0, old[i].k1, old[i].v - 1);
        if (old != m->inl)
            alloc(ud, old, oldcap * sizeof(map_slot), 0);
    }
    map_insert(m, k0, k1, v);
    return SN_OK;
}

static void map_free(lua_State *L, idmap *m)
{
    if (m->cap > 0 && m->s != m->inl) {
        void *ud;
        lua_Alloc alloc = lua_getallocf(L, &ud);
        alloc(ud, m->s, m->cap * sizeof(map_slot), 0);
    }
    m->s = NULL;
    m->cap = m->n = 0;
}

/* The map key of a 16-byte bytecode hash. */
static void hash_key(const unsigned char *hash, uint64_t *k0, uint64_t *k1)
{
    *k0 = sn_mpack_get_be(hash, 8);
    *k1 = sn_mpack_get_be(hash + 8, 8);
}

static void names_add_from(lua_State *L, int fn2name, int name2fn, int src, const char *prefix)
{
    lua_pushnil(L);
    while (lua_next(L, src)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
            if (prefix)
                lua_pushfstring(L, "%s.%s", prefix, lua_tostring(L, -2));
            else
                lua_pushvalue(L, -2);
            lua_pushvalue(L, -1);
            lua_pushvalue(L, -3);
            lua_rawset(L, name2fn);
            lua_pushvalue(L, -2);
            if (lua_rawget(L, fn2name) == LUA_TNIL) {
                lua_pop(L, 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, fn2name);
            } else {
                lua_pop(L, 2);
            }
        }
        lua_pop(L, 1);
    }
}

/* (Re)builds the two name maps of C functions from the globals (bare names) and the tables of
 * package.loaded ("lib.name"), stores them in the cache and pushes fn2name, name2fn. */
static void names_build(lua_State *L, int cache)
{
    lua_newtable(L);
    int fn2name = lua_gettop(L);
    lua_newtable(L);
    int name2fn = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    int globals = lua_gettop(L);
    if (lua_type(L, globals) == LUA_TTABLE)
        names_add_from(L, fn2name, name2fn, globals, NULL);
    lua_pushliteral(L, LUA_LOADED_TABLE);
    if (lua_rawget(L, LUA_REGISTRYINDEX) == LUA_TTABLE) {
        int loaded = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, loaded)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE &&
                !lua_rawequal(L, -1, globals))
                names_add_from(L, fn2name, name2fn, lua_gettop(L), lua_tostring(L, -2));
            lua_pop(L, 1);
        }
    }
    lua_settop(L, name2fn);
    lua_pushvalue(L, fn2name);
    lua_rawseti(L, cache, SLOT_FN2NAME);
    lua_pushvalue(L, name2fn);
    lua_rawseti(L, cache, SLOT_NAME2FN);
}

/* ---- encoder ------------------------------------------------------------------------------ */

typedef struct enc {
    lua_State *L;
    const sn_snapshot_opts *o;
    sn_buf *out;
    int code;
    char what[WHAT_LEN];
    char path[PATH_MAX_LEN]; /* built backwards while unwinding: path[pstart..] */
    size_t pstart;
    int globals, fn2name, cache; /* stack indices; cache and fn2name nil until a C function */
    int names_rebuilt, gc_stopped;
    lua_Integer nobjs;
    /* Objects met (address -> sequence number), upvalue cells met (lua_upvalueid -> function
     * sequence << 8 | upvalue index), bytecode hashes written (hash -> offset of the head).
     * The maps do not keep objects alive: see enc_gc_stop for why none dies meanwhile. */
    idmap seen, cells, protos;
} enc;

/* Buffer growth failure is raised (we run under pcall); the caller's buffer leaks nothing. */
static void enc_nomem(enc *e)
{
    e->code = SN_ENOMEM;
    snprintf(e->what, sizeof e->what, "out of memory growing the output buffer");
    lua_pushnil(e->L);
    lua_error(e->L);
}

/* A work map could not grow: raised like a buffer failure. */
static void enc_map_put(enc *e, idmap *m, uint64_t k0, uint64_t k1, uint64_t v)
{
    if (map_put(e->L, m, k0, k1, v) != SN_OK) {
        e->code = SN_ENOMEM;
        snprintf(e->what, sizeof e->what, "out of memory growing a work map");
        lua_pushnil(e->L);
        lua_error(e->L);
    }
}

/* The identity of the table or function at idx while the encoder runs. */
static uint64_t obj_key(lua_State *L, int idx)
{
    return (uint64_t)(uintptr_t)lua_topointer(L, idx);
}

/* Every write goes through sn_mpack, which reserves what it writes; this raises its ENOMEM. */
#define PUT(e, write)                                                                              \
    do {                                                                                           \
        if ((write) != SN_OK) enc_nomem(e);                                                        \
    } while (0)

/* The one-byte-payload ext markers (TABLE_MT, GLOBALS, ENV): payload 00. */
static void put_marker(enc *e, int type)
{
    PUT(e, sn_mpack_put_ext_hdr(e->out, (int8_t)type, 1));
    PUT(e, sn_mpack_put_be(e->out, 0, 1));
}

SN_PRINTF(3, 4) static int enc_fail(enc *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->what, sizeof e->what, fmt, ap);
    va_end(ap);
    e->code = code;
    return code;
}

/* Prepends a path segment while an error unwinds; a path too long keeps its tail and "...". */
static void path_prepend(enc *e, const char *seg)
{
    size_t n = strlen(seg);
    if (n + 3 > e->pstart) {
        if (e->pstart >= 3 && strncmp(e->path + e->pstart, "...", 3) != 0) {
            e->pstart -= 3;
            memcpy(e->path + e->pstart, "...", 3);
        }
        return;
    }
    e->pstart -= n;
    memcpy(e->path + e->pstart, seg, n);
}

static int is_identifier(const char *s, size_t n)
{
    if (n == 0 || n > 40 || !(s[0] == '_' || ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
            return 0;
    }
    return 1;
}

/* The readable segment for the key at idx: .name, ["any key"], [3], [1.5], [true], [table]. */
static void path_prepend_key(enc *e, int idx)
{
    lua_State *L = e->L;
    char seg[64];
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (is_identifier(s, n)) {
            snprintf(seg, sizeof seg, ".%.*s", (int)n, s);
        } else {
            size_t o = 0;
            seg[o++] = '[';
            seg[o++] = '"';
            for (size_t i = 0; i < n && o < 40; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 32 && c < 127 && c != '"' && c != '\\')
                    seg[o++] = (char)c;
                else
                    o += (size_t)snprintf(seg + o, sizeof seg - o, "\\%u", c);
            }
            snprintf(seg + o, sizeof seg - o, "%s\"]", n > 0 && o >= 40 ? "..." : "");
        }
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(seg, sizeof seg, "[" LUA_INTEGER_FMT "]", lua_tointeger(L, idx));
        else
            snprintf(seg, sizeof seg, "[%.14g]", (double)lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        snprintf(seg, sizeof seg, "[%s]", lua_toboolean(L, idx) ? "true" : "false");
        break;
    default:
        snprintf(seg, sizeof seg, "[%s]", luaL_typename(L, idx));
        break;
    }
    path_prepend(e, seg);
}

static int enc_value(enc *e, int idx, int depth);

/* If the table or function at idx was encoded before, writes a back-reference and returns 1. */
static int enc_backref(enc *e, int idx)
{
    uint64_t seq;
    if (!map_get(&e->seen, obj_key(e->L, idx), 0, &seq))
        return 0;
    int width = seq <= 0xff ? 1 : seq <= 0xffff ? 2 : 4;
    PUT(e, sn_mpack_put_ext_hdr(e->out, EXT_REF, (size_t)width));
    PUT(e, sn_mpack_put_be(e->out, (uint64_t)seq, width));
    return 1;
}

/* lua_checkstack(L, n) failed: past LUAI_MAXSTACK the stack is exhausted; below it, growing
 * the stack ran out of memory (lua_checkstack says only "no"). */
static int enc_stack_fail(enc *e, int n)
{
    if (lua_gettop(e->L) + n + 8 < LUAI_MAXSTACK)
        return enc_fail(e, SN_ENOMEM, "out of memory (Lua stack)");
    return enc_fail(e, SN_ELIMIT, "Lua stack exhausted");
}

/* Gives the object at idx the next sequence number; checks the nesting depth first. */
static int enc_register(enc *e, int idx, int depth, lua_Integer *seq)
{
    lua_State *L = e->L;
    if (depth > e->o->max_depth)
        return enc_fail(e, SN_ELIMIT, "nesting deeper than %d", e->o->max_depth);
    if (e->nobjs >= 0xffffffffLL)
        return enc_fail(e, SN_ELIMIT, "more than 2^32-1 tables and functions");
    if (!lua_checkstack(L, 8))
        return enc_stack_fail(e, 8);
    *seq = e->nobjs++;
    enc_map_put(e, &e->seen, obj_key(L, idx), 0, (uint64_t)*seq);
    return SN_OK;
}

static int enc_table(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    lua_Integer seq;
    if (enc_backref(e, idx))
        return SN_OK;
    int rc = enc_register(e, idx, depth, &seq);
    if (rc != SN_OK)
        return rc;

    int has_mt = lua_getmetatable(L, idx), mt = lua_gettop(L);
    if (has_mt && is_transparent(L, mt)) {
        lua_pop(L, 1);
        has_mt = 0;
    }
    if (has_mt) {
        PUT(e, sn_mpack_put_array(e->out, 3));
        put_marker(e, EXT_TABLE_MT);
    }

    /* A table that is exactly the sequence 1..n travels as an array, anything else as a map. */
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    int is_seq = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        if (is_seq && !(lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
                        lua_tointeger(L, -2) <= n))
            is_seq = 0;
        lua_pop(L, 1);
    }

    if (count > 0xffffffffLL)
        return enc_fail(e, SN_ELIMIT, "table of more than 2^32-1 entries");
    if (is_seq && count == n && n > 0) {
        PUT(e, sn_mpack_put_array(e->out, (uint32_t)n));
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            rc = enc_value(e, lua_gettop(L), depth);
            if (rc != SN_OK) {
                char seg[32];
                snprintf(seg, sizeof seg, "[" LUA_INTEGER_FMT "]", i);
                path_prepend(e, seg);
                return rc;
            }
            lua_pop(L, 1);
        }
    } else {
        size_t at = e->out->len;
        PUT(e, sn_mpack_put_map(e->out, (uint32_t)count));
        lua_Integer written = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            int top = lua_gettop(L);
            rc = enc_value(e, top - 1, depth);
            if (rc != SN_OK) {
                path_prepend(e, "<key>");
                return rc;
            }
            rc = enc_value(e, top, depth);
            if (rc != SN_OK) {
                path_prepend_key(e, top - 1);
                return rc;
            }
            lua_pop(L, 1);
            written++;
        }
        /* A weak table may lose entries to a collection between the two walks: patch the
         * count in place (same width; MessagePack allows a non-minimal header). */
        if (written != count)
            sn_mpack_patch_count(e->out->data + at, (uint32_t)written);
    }

    if (has_mt) {
        rc = enc_value(e, mt, depth);
        if (rc != SN_OK) {
            path_prepend(e, "<metatable>");
            return rc;
        }
        lua_pop(L, 1);
    }
    return SN_OK;
}

/* lua_dump calls this once per field (a byte, an int, a constant): ~100 calls for a small
 * function, so the common case of a few bytes into room already there stays inline. */
static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    sn_buf *b = ((enc *)ud)->out;
    (void)L;
    if (b->cap - b->len < sz && sn_buf_reserve(b, sz) != 0)
        return 1;
    char *dst = b->data + b->len;
    switch (sz) { /* the sizes of lua_dump's fields: each a single move */
    case 1:
        *dst = *(const char *)p;
        break;
    case 4:
        memcpy(dst, p, 4);
        break;
    case 8:
        memcpy(dst, p, 8);
        break;
    default:
        memcpy(dst, p, sz);
    }
    b->len += sz;
    return 0;
}

/* A function head without bytecode: kind and hash only. */
static void put_short_head(enc *e, int kind, const unsigned char *hash)
{
    PUT(e, sn_mpack_put_ext_hdr(e->out, EXT_FUNC, FUNC_HEAD_LEN));
    PUT(e, sn_mpack_put_be(e->out, (uint64_t)kind, 1));
    PUT(e, sn_mpack_put_raw(e->out, hash, HASH_LEN));
}

/* Head ext of a function: the bytecode with its hash, or only the hash when an earlier function
 * of this snapshot had the same bytecode (its ext32 header sits at the offset kept in protos). */
static void enc_function_head(enc *e, int idx)
{
    lua_State *L = e->L;
    size_t head = e->out->len;
    PUT(e, sn_mpack_room(e->out, SN_MPACK_EXT32_HDR + FUNC_HEAD_LEN));
    e->out->len += SN_MPACK_EXT32_HDR + FUNC_HEAD_LEN;
    size_t code_at = e->out->len;
    lua_pushvalue(L, idx);
    int status = lua_dump(L, dump_writer, e, 0);
    lua_pop(L, 1);
    if (status != 0) {
        e->code = SN_ENOMEM;
        snprintf(e->what, sizeof e->what, "out of memory dumping a function");
        lua_pushnil(L);
        lua_error(L);
    }
    size_t code_len = e->out->len - code_at;
    unsigned char *p = (unsigned char *)e->out->data;
    uint64_t h[2];
    sn_hash_murmur3_128(p + code_at, code_len, HASH_SEED, h);
    unsigned char hash[HASH_LEN];
    sn_mpack_be_at(hash, h[0], 8);
    sn_mpack_be_at(hash + 8, h[1], 8);

    uint64_t prev;
    int collision = map_get(&e->protos, h[0], h[1], &prev);
    if (collision) {
        size_t prev_len = (size_t)sn_mpack_get_be(p + prev + 1, 4) - FUNC_HEAD_LEN;
        if (prev_len == code_len &&
            memcmp(p + prev + SN_MPACK_EXT32_HDR + FUNC_HEAD_LEN, p + code_at, code_len) == 0) {
            e->out->len = head;
            put_short_head(e, FUNC_SAME, hash);
            return;
        }
    }
    const sn_snapshot_fcache *fc = e->o->fcache;
    if (fc && fc->known && fc->known(fc->ud, hash)) { /* the receiver has it: the hash only */
        e->out->len = head;
        put_short_head(e, FUNC_HASH_ONLY, hash);
        return;
    }
    if (fc && fc->sent)
        fc->sent(fc->ud, hash);
    if (code_len > 0xffffffffu - FUNC_HEAD_LEN) {
        e->code = SN_ELIMIT;
        snprintf(e->what, sizeof e->what, "function bytecode over 4 GiB");
        lua_pushnil(L);
        lua_error(L);
    }
    sn_mpack_ext32_at(p + head, EXT_FUNC, (uint32_t)(code_len + FUNC_HEAD_LEN));
    p[head + SN_MPACK_EXT32_HDR] = FUNC_BYTECODE;
    memcpy(p + head + SN_MPACK_EXT32_HDR + 1, hash, HASH_LEN);
    /* Same hash, other bytes: keep the first, as the decoder does, and send this one inline. */
    if (!collision)
        enc_map_put(e, &e->protos, h[0], h[1], (uint64_t)head);
}

/* 1 when the function at f has upvalue i (i < 1: 1). Two lua_getupvalue calls answer "has
 * exactly k upvalues" for less than the option parsing of lua_getinfo(">u"). */
static int has_upvalue(lua_State *L, int f, int i)
{
    if (i < 1)
        return 1;
    if (!lua_getupvalue(L, f, i))
        return 0;
    lua_pop(L, 1);
    return 1;
}

static int enc_function(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    lua_Integer seq;
    if (enc_backref(e, idx))
        return SN_OK;
    int rc = enc_register(e, idx, depth, &seq);
    if (rc != SN_OK)
        return rc;
    /* The upvalues stay on the stack from their count to their encoding: each is read once.
     * A Lua function has at most 255; env marks those named _ENV. */
    if (!lua_checkstack(L, 256 + 8))
        return enc_stack_fail(e, 256 + 8);
    int base = lua_gettop(L), nups = 0;
    uint64_t env[4] = {0, 0, 0, 0};
    const char *name;
    while (nups < 255 && (name = lua_getupvalue(L, idx, nups + 1)) != NULL) {
        if (name[0] == '_' && strcmp(name, "_ENV") == 0)
            env[nups >> 6] |= 1ull << (nups & 63);
        nups++;
    }
    PUT(e, sn_mpack_put_array(e->out, 1 + (uint32_t)nups));
    if (e->o->functions)
        (*e->o->functions)++;
    enc_function_head(e, idx);

    for (int i = 1; i <= nups; i++) {
        if ((env[(i - 1) >> 6] >> ((i - 1) & 63)) & 1) {
            put_marker(e, EXT_ENV);
            continue;
        }
        /* Cells are keyed by lua_upvalueid so sibling closures stay joined at the receiver. */
        uint64_t cell_id = (uint64_t)(uintptr_t)lua_upvalueid(L, idx, i), cell;
        if (map_get(&e->cells, cell_id, 0, &cell)) {
            PUT(e, sn_mpack_put_ext_hdr(e->out, EXT_UPREF, 8));
            PUT(e, sn_mpack_put_be(e->out, cell >> 8, 4));
            PUT(e, sn_mpack_put_be(e->out, cell & 0xff, 4));
            continue;
        }
        enc_map_put(e, &e->cells, cell_id, 0, ((uint64_t)seq << 8) | (unsigned)i);
        rc = enc_value(e, base + i, depth);
        if (rc != SN_OK) {
            char seg[80];
            snprintf(seg, sizeof seg, "<upvalue '%.60s'>", lua_getupvalue(L, idx, i));
            path_prepend(e, seg);
            return rc;
        }
    }
    lua_settop(L, base);
    return SN_OK;
}

/* Stops the collector until the encode returns (sn_snapshot_encode restarts it), before the
 * encoder's only Lua allocations (the per-state cache, the C-function name maps). The maps of
 * enc know objects by address without keeping them alive; a collection step could free an
 * object met earlier that only a weak table held, and run finalizers, Lua code that could make
 * a new object at that address reachable from a value not yet written: a false back-reference.
 * Stopped, the collector frees and finalizes nothing (an emergency collection on a failed
 * allocation may free, but runs no finalizer, so nothing new joins the values). */
static void enc_gc_stop(enc *e)
{
    if (!e->gc_stopped && lua_gc(e->L, LUA_GCISRUNNING, 0)) {
        lua_gc(e->L, LUA_GCSTOP, 0);
        e->gc_stopped = 1;
    }
}

static int enc_cfunction(enc *e, int idx)
{
    lua_State *L = e->L;
    for (;;) {
        if (lua_type(L, e->fn2name) == LUA_TTABLE) {
            lua_pushvalue(L, idx);
            if (lua_rawget(L, e->fn2name) == LUA_TSTRING) {
                size_t n;
                const char *name = lua_tolstring(L, -1, &n);
                PUT(e, sn_mpack_put_ext_hdr(e->out, EXT_CFUNC, n));
                PUT(e, sn_mpack_put_raw(e->out, name, n));
                lua_pop(L, 1);
                return SN_OK;
            }
            lua_pop(L, 1);
        }
        if (e->names_rebuilt)
            return enc_fail(e, SN_EINVAL, "C function cannot be sent");
        enc_gc_stop(e);
        if (lua_type(L, e->cache) != LUA_TTABLE) { /* first C function of this call */
            cache_push(L);
            lua_replace(L, e->cache);
            lua_rawgeti(L, e->cache, SLOT_FN2NAME);
            lua_replace(L, e->fn2name);
            continue;
        }
        /* The cached map may predate a require: rebuild once per call before refusing. */
        names_build(L, e->cache);
        lua_pop(L, 1);
        lua_replace(L, e->fn2name);
        e->names_rebuilt = 1;
    }
}

static int enc_value(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        PUT(e, sn_mpack_put_nil(e->out));
        return SN_OK;
    case LUA_TBOOLEAN:
        PUT(e, sn_mpack_put_bool(e->out, lua_toboolean(L, idx)));
        return SN_OK;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            PUT(e, sn_mpack_put_int(e->out, (int64_t)lua_tointeger(L, idx)));
        else
            PUT(e, sn_mpack_put_double(e->out, (double)lua_tonumber(L, idx)));
        return SN_OK;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (n > 0xffffffffu)
            return enc_fail(e, SN_ELIMIT, "string over 4 GiB cannot be sent");
        PUT(e, sn_mpack_put_str(e->out, s, n));
        return SN_OK;
    }
    case LUA_TTABLE:
        if (lua_rawequal(L, idx, e->globals)) {
            put_marker(e, EXT_GLOBALS);
            return SN_OK;
        }
        return enc_table(e, idx, depth + 1);
    case LUA_TFUNCTION:
        if (lua_iscfunction(L, idx))
            return enc_cfunction(e, idx);
        return enc_function(e, idx, depth + 1);
    case LUA_TUSERDATA:
        return enc_fail(e, SN_EINVAL, "userdata cannot be sent");
    case LUA_TLIGHTUSERDATA:
        return enc_fail(e, SN_EINVAL, "light userdata cannot be sent");
    case LUA_TTHREAD:
        return enc_fail(e, SN_EINVAL, "coroutine cannot be sent");
    default:
        return enc_fail(e, SN_EINVAL, "%s cannot be sent", luaL_typename(L, idx));
    }
}

/* Protected body of sn_snapshot_encode: arg 1 is the enc, args 2.. are the values. */
static int enc_main(lua_State *L)
{
    enc *e = lua_touserdata(L, 1);
    int nvals = lua_gettop(L) - 1;
    luaL_checkstack(L, 16, NULL);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    e->globals = lua_gettop(L);
    lua_pushnil(L); /* the cache and the name map, fetched at the first C function */
    e->cache = lua_gettop(L);
    lua_pushnil(L);
    e->fn2name = lua_gettop(L);

    PUT(e, sn_mpack_put_be(e->out, SN_SNAPSHOT_VERSION, 1));
    PUT(e, sn_mpack_put_array(e->out, (uint32_t)nvals));
    for (int i = 0; i < nvals; i++) {
        int rc = enc_value(e, 2 + i, 0);
        if (rc != SN_OK) {
            char seg[32];
            snprintf(seg, sizeof seg, "arg %d%s", e->o->arg_base + i,
                     e->pstart < sizeof e->path ? " " : "");
            path_prepend(e, seg);
            return 0;
        }
    }
    return 0;
}

/* Values that are all nil, booleans, numbers or strings: the bytes enc_main writes for them,
 * without its protected call and work tables (most of a stage.signal of an integer and a
 * short string went there). 1 when done (*rc set), 0 when a value needs enc_main. */
static int enc_scalars(lua_State *L, int first, int n, sn_buf *out, int *rc)
{
    for (int i = 0; i < n; i++) {
        int t = lua_type(L, first + i);
        if (t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TNUMBER && t != LUA_TSTRING)
            return 0;
        if (t == LUA_TSTRING && lua_rawlen(L, first + i) > 0xffffffffu)
            return 0; /* enc_main names the value */
    }
    size_t start = out->len;
    int bad = sn_mpack_put_be(out, SN_SNAPSHOT_VERSION, 1) ||
              sn_mpack_put_array(out, (uint32_t)n);
    for (int i = 0; i < n && !bad; i++) {
        int idx = first + i;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            bad = sn_mpack_put_nil(out);
            break;
        case LUA_TBOOLEAN:
            bad = sn_mpack_put_bool(out, lua_toboolean(L, idx));
            break;
        case LUA_TNUMBER:
            bad = lua_isinteger(L, idx) ? sn_mpack_put_int(out, (int64_t)lua_tointeger(L, idx))
                                        : sn_mpack_put_double(out, (double)lua_tonumber(L, idx));
            break;
        default: {
            size_t len;
            const char *str = lua_tolstring(L, idx, &len);
            bad = sn_mpack_put_str(out, str, len);
            break;
        }
        }
    }
    if (bad)
        out->len = start;
    *rc = bad ? SN_ENOMEM : SN_OK;
    return 1;
}

int sn_snapshot_encode(lua_State *L, int first, int n, const sn_snapshot_opts *o, sn_buf *out,
                       char *err, size_t errlen)
{
    sn_snapshot_opts defaults;
    if (!o) {
        sn_snapshot_opts_init(&defaults);
        o = &defaults;
    }
    int rc = check_opts(o, err, errlen);
    if (rc != SN_OK)
        return rc;
    int top = lua_gettop(L);
    if (n > 0)
        first = lua_absindex(L, first);
    if (n < 0 || (n > 0 && (first < 1 || first + n - 1 > top))) {
        set_err(err, errlen, "values %d..%d are not on the stack", first, first + n - 1);
        return SN_EINVAL;
    }
    if (!lua_checkstack(L, n + 3)) {
        set_err(err, errlen, "out of memory (Lua stack for %d values)", n);
        return SN_ENOMEM;
    }
    if (enc_scalars(L, first, n, out, &rc)) {
        if (rc != SN_OK)
            set_err(err, errlen, "out of memory");
        return rc;
    }

    enc e; /* not memset whole: the maps' slots are cleared when first used */
    e.code = SN_OK;
    e.what[0] = '\0';
    e.globals = e.fn2name = e.cache = 0;
    e.names_rebuilt = e.gc_stopped = 0;
    e.nobjs = 0;
    e.seen.cap = e.cells.cap = e.protos.cap = 0;
    e.seen.n = e.cells.n = e.protos.n = 0;
    e.L = L;
    e.o = o;
    e.out = out;
    e.pstart = sizeof e.path;
    size_t start = out->len;

    lua_pushcfunction(L, enc_main);
    lua_pushlightuserdata(L, &e);
    for (int i = 0; i < n; i++)
        lua_pushvalue(L, first + i);
    int status = lua_pcall(L, n + 1, 0, 0);

    if (e.code != SN_OK) {
        rc = e.code;
        if (e.pstart < sizeof e.path)
            set_err(err, errlen, "%.*s: %s", (int)(sizeof e.path - e.pstart), e.path + e.pstart,
                    e.what);
        else
            set_err(err, errlen, "%s", e.what);
    } else if (status == LUA_ERRMEM) {
        rc = SN_ENOMEM;
        set_err(err, errlen, "out of memory");
    } else if (status != LUA_OK) {
        rc = SN_ELUA;
        const char *msg = lua_tostring(L, -1);
        set_err(err, errlen, "%s", msg ? msg : "Lua error");
    }
    lua_settop(L, top);
    if (e.gc_stopped)
        lua_gc(L, LUA_GCRESTART, 0);
    map_free(L, &e.seen);
    map_free(L, &e.cells);
    map_free(L, &e.protos);
    if (rc != SN_OK)
        out->len = start;
    return rc;
}

/* The same bytes enc_main writes for the values (nil, text), with the same sn_mpack writers. */
int sn_snapshot_encode_error(sn_buf *out, const char *text)
{
    size_t n = text ? strlen(text) : 0, start = out->len;
    if (n > 0xffffffffu) /* no error text is 4 GiB; cut rather than fail the reply */
        n = 0xffffffffu;
    if (sn_mpack_put_be(out, SN_SNAPSHOT_VERSION, 1) || sn_mpack_put_array(out, 2) ||
        sn_mpack_put_nil(out) || sn_mpack_put_str(out, text ? text : "", n)) {
        out->len = start;
        return SN_ENOMEM;
    }
    return SN_OK;
}

/* ---- decoder ------------------------------------------------------------------------------ */

typedef struct dec {
    lua_State *L;
    const sn_snapshot_opts *o;
    const unsigned char *base, *p, *end;
    int code;
    char what[WHAT_LEN + 40];
    int env, cache, objs, name2fn; /* stack indices */
    int owns_cache, names_fetched, names_rebuilt;
    lua_Integer nobjs;
    idmap protos; /* hash of each kind-0 bytecode -> offset of its head ext */
} dec;

SN_PRINTF(3, 4) static int dec_fail(dec *d, int code, const char *fmt, ...)
{
    char msg[WHAT_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(d->what, sizeof d->what, "byte %zu: %s", (size_t)(d->p - d->base), msg);
    d->code = code;
    return code;
}

static size_t dec_left(const dec *d)
{
    return (size_t)(d->end - d->p);
}

static int dec_truncated(dec *d)
{
    return dec_fail(d, SN_EPROTO, "truncated");
}

/* Words why sn_mpack_read failed at d->p. */
static int dec_read_fail(dec *d, sn_mpack_fail f, const sn_mpack_item *it)
{
    if (f == SN_MPACK_INVALID)
        return dec_fail(d, SN_EPROTO, "invalid byte 0x%02x", *d->p);
    if (f == SN_MPACK_OVERRUN)
        return dec_fail(d, SN_EPROTO, "%s of %llu bytes larger than the %zu bytes left",
                        it->type == SN_MPACK_EXT ? "ext" : "string", (unsigned long long)it->v.u,
                        dec_left(d));
    return dec_truncated(d);
}

/* One value header (and the body of a str, bin or ext) with sn_mpack. */
static inline int dec_read(dec *d, sn_mpack_item *it)
{
    sn_mpack_fail f = sn_mpack_read(&d->p, d->end, it);
    return f == SN_MPACK_OK ? SN_OK : dec_read_fail(d, f, it);
}

/* Consumes the ext at p: its type and payload (length checked against the bytes left). */
static int dec_ext_take(dec *d, int *type, const unsigned char **payload, size_t *len)
{
    sn_mpack_item it;
    *type = -1;
    *payload = NULL;
    *len = 0;
    int rc = dec_read(d, &it);
    if (rc != SN_OK)
        return rc;
    if (it.type != SN_MPACK_EXT)
        return dec_fail(d, SN_EPROTO, "ext expected");
    *type = it.ext;
    *payload = it.data;
    *len = (size_t)it.v.u;
    return SN_OK;
}

/* The type of the ext header at p, without consuming it (its payload may still be cut short:
 * a truncated function must be refused as untrusted before it is found malformed); -1 if p
 * holds no ext header. */
static int dec_peek_ext(const dec *d)
{
    const unsigned char *q = d->p;
    sn_mpack_item it;
    sn_mpack_fail f = sn_mpack_read(&q, d->end, &it);
    return (f == SN_MPACK_OK || f == SN_MPACK_OVERRUN) && it.type == SN_MPACK_EXT ? it.ext : -1;
}

static void dec_register(dec *d)
{
    lua_pushvalue(d->L, -1);
    lua_rawseti(d->L, d->objs, ++d->nobjs);
}

static int dec_value(dec *d, int depth);

/* Checks a container about to open at depth with n elements of min_bytes each. */
static int dec_open(dec *d, int depth, uint64_t n, size_t min_bytes)
{
    if (depth > d->o->max_depth)
        return dec_fail(d, SN_ELIMIT, "nesting deeper than %d", d->o->max_depth);
    if (n > dec_left(d) / min_bytes)
        return dec_fail(d, SN_EPROTO, "%llu elements cannot fit in the %zu bytes left",
                        (unsigned long long)n, dec_left(d));
    if (n > INT32_MAX / 2 || !lua_checkstack(d->L, 8))
        return dec_fail(d, SN_ELIMIT, "container too large");
    return SN_OK;
}

static int dec_fill_array(dec *d, uint64_t n, int depth)
{
    for (uint64_t i = 1; i <= n; i++) {
        int rc = dec_value(d, depth);
        if (rc != SN_OK)
            return rc;
        lua_rawseti(d->L, -2, (lua_Integer)i);
    }
    return SN_OK;
}

static int dec_fill_map(dec *d, uint64_t n, int depth)
{
    lua_State *L = d->L;
    for (uint64_t i = 0; i < n; i++) {
        int rc = dec_value(d, depth);
        if (rc != SN_OK)
            return rc;
        if (lua_isnil(L, -1))
            return dec_fail(d, SN_EPROTO, "nil table key");
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) &&
            lua_tonumber(L, -1) != lua_tonumber(L, -1))
            return dec_fail(d, SN_EPROTO, "NaN table key");
        rc = dec_value(d, depth);
        if (rc != SN_OK)
            return rc;
        lua_rawset(L, -3);
    }
    return SN_OK;
}

/* A table body: an array or a map header, then its elements, into a new registered table. */
static int dec_table(dec *d, int is_map, uint64_t n, int depth)
{
    int rc = dec_open(d, depth, n, is_map ? 2 : 1);
    if (rc != SN_OK)
        return rc;
    if (is_map)
        lua_createtable(d->L, 0, (int)n);
    else
        lua_createtable(d->L, (int)n, 0);
    dec_register(d);
    return is_map ? dec_fill_map(d, n, depth) : dec_fill_array(d, n, depth);
}

/* [TABLE_MT head, body, metatable]: the table is registered before its body, as encoded. */
static int dec_table_mt(dec *d, uint64_t n, int depth)
{
    int type;
    const unsigned char *payload;
    size_t len;
    if (!d->o->trusted) /* a metatable is behaviour (__gc, __index, ...): code, not data */
        return dec_fail(d, SN_EUNTRUSTED, "metatable in a snapshot from an untrusted source");
    if (n != 3)
        return dec_fail(d, SN_EPROTO, "table with metatable has %llu parts, not 3",
                        (unsigned long long)n);
    int rc = dec_ext_take(d, &type, &payload, &len);
    if (rc != SN_OK)
        return rc;
    sn_mpack_item body;
    if ((rc = dec_read(d, &body)) != SN_OK)
        return rc;
    if (body.type != SN_MPACK_ARRAY && body.type != SN_MPACK_MAP)
        return dec_fail(d, SN_EPROTO, "table body is not an array or a map");
    rc = dec_table(d, body.type == SN_MPACK_MAP, body.v.u, depth);
    if (rc != SN_OK)
        return rc;
    rc = dec_value(d, depth);
    if (rc != SN_OK)
        return rc;
    if (!lua_istable(d->L, -1))
        return dec_fail(d, SN_EPROTO, "metatable is not a table");
    /* A finalizer runs with hooks off, out of every budget (docs/governor.md, Finalizers) */
    lua_pushliteral(d->L, "__gc");
    int gc = lua_rawget(d->L, -2) != LUA_TNIL;
    lua_pop(d->L, 1);
    if (gc)
        return dec_fail(d, SN_EPROTO, "metatable with __gc refused");
    lua_setmetatable(d->L, -2);
    return SN_OK;
}

typedef struct chunk {
    const char *p;
    size_t n;
    char *owned; /* a copy from the function cache, freed after lua_load */
} chunk;

static const char *chunk_reader(lua_State *L, void *ud, size_t *size)
{
    chunk *c = ud;
    *size = c->n;
    c->n = 0;
    return *size ? c->p : NULL;
}

/* The bytecode of a function head: inline, or an earlier inline one with the same hash. */
static int dec_bytecode(dec *d, const unsigned char *head, const unsigned char *payload, size_t len,
                        chunk *code)
{
    lua_State *L = d->L;
    if (len < FUNC_HEAD_LEN)
        return dec_fail(d, SN_EPROTO, "function head of %zu bytes", len);
    const unsigned char *hash = payload + 1;
    const sn_snapshot_fcache *fc = d->o->fcache;
    code->owned = NULL;
    switch (payload[0]) {
    case FUNC_BYTECODE: {
        uint64_t k0, k1, at;
        hash_key(hash, &k0, &k1);
        /* The hash names bytecode beyond this snapshot only through the function cache: there
         * a wrong one would poison what later senders refer to by hash, so stored bytecode is
         * checked. Inside one snapshot it is a label chosen by a trusted sender (functions
         * are refused from any other), who could as well send any bytecode inline: checking
         * it there protects nothing. */
        if (fc && fc->store) {
            uint64_t h[2];
            sn_hash_murmur3_128(payload + FUNC_HEAD_LEN, len - FUNC_HEAD_LEN, HASH_SEED, h);
            if (k0 != h[0] || k1 != h[1])
                return dec_fail(d, SN_EPROTO, "function bytecode does not match its hash");
        }
        if (!map_get(&d->protos, k0, k1, &at) &&
            map_put(L, &d->protos, k0, k1, (uint64_t)(head - d->base)) != SN_OK)
            return dec_fail(d, SN_ENOMEM, "out of memory growing a work map");
        code->p = (const char *)payload + FUNC_HEAD_LEN;
        code->n = len - FUNC_HEAD_LEN;
        if (fc && fc->store)
            fc->store(fc->ud, hash, code->p, code->n);
        return SN_OK;
    }
    case FUNC_SAME: {
        if (len != FUNC_HEAD_LEN)
            return dec_fail(d, SN_EPROTO, "function reference head of %zu bytes", len);
        uint64_t k0, k1, at;
        hash_key(hash, &k0, &k1);
        if (!map_get(&d->protos, k0, k1, &at))
            return dec_fail(d, SN_EPROTO, "function refers to bytecode not in this snapshot");
        /* at is the ext header of an earlier head, already checked against the input. */
        const unsigned char *q = d->base + at;
        sn_mpack_item prev;
        if (sn_mpack_read(&q, d->end, &prev) != SN_MPACK_OK || prev.type != SN_MPACK_EXT ||
            prev.v.u < FUNC_HEAD_LEN)
            return dec_fail(d, SN_EPROTO, "bad earlier function head");
        code->p = (const char *)prev.data + FUNC_HEAD_LEN;
        code->n = (size_t)prev.v.u - FUNC_HEAD_LEN;
        return SN_OK;
    }
    case FUNC_HASH_ONLY: {
        if (len != FUNC_HEAD_LEN)
            return dec_fail(d, SN_EPROTO, "hash-only function head of %zu bytes", len);
        size_t n = 0;
        char *copy = fc && fc->lookup ? fc->lookup(fc->ud, hash, &n) : NULL;
        if (!copy)
            return dec_fail(d, SN_ENOENT, "a function refers to bytecode this node does not "
                                          "hold (hash-only reference)");
        code->p = copy;
        code->n = n;
        code->owned = copy;
        return SN_OK;
    }
    default:
        return dec_fail(d, SN_EPROTO, "unknown function kind %u", payload[0]);
    }
}

/* An upvalue slot of the function at fidx: the env marker, a shared cell, or a value. */
static int dec_upvalue(dec *d, int fidx, int i, int depth)
{
    lua_State *L = d->L;
    int type = dec_peek_ext(d);
    if (type != EXT_ENV && type != EXT_UPREF) {
        int rc = dec_value(d, depth);
        if (rc != SN_OK)
            return rc;
        lua_setupvalue(L, fidx, i);
        return SN_OK;
    }
    const unsigned char *payload;
    size_t len;
    int rc = dec_ext_take(d, &type, &payload, &len);
    if (rc != SN_OK)
        return rc;
    if (type == EXT_ENV) {
        lua_pushvalue(L, d->env);
        lua_setupvalue(L, fidx, i);
        return SN_OK;
    }
    if (len != 8)
        return dec_fail(d, SN_EPROTO, "upvalue reference of %zu bytes", len);
    uint64_t seq = sn_mpack_get_be(payload, 4), n = sn_mpack_get_be(payload + 4, 4);
    if ((lua_Integer)seq >= d->nobjs)
        return dec_fail(d, SN_EPROTO, "upvalue reference to object %llu not yet decoded",
                        (unsigned long long)seq);
    lua_rawgeti(L, d->objs, (lua_Integer)seq + 1);
    /* lua_upvaluejoin does not check its arguments: a Lua function and an existing upvalue. */
    if (lua_type(L, -1) != LUA_TFUNCTION || lua_iscfunction(L, -1) || n < 1 || n > 255 ||
        lua_getupvalue(L, -1, (int)n) == NULL)
        return dec_fail(d, SN_EPROTO, "upvalue reference to a missing upvalue");
    lua_pop(L, 1);
    lua_upvaluejoin(L, fidx, i, lua_gettop(L), (int)n);
    lua_pop(L, 1);
    return SN_OK;
}

/* [FUNC head, upvalue...]: loads the bytecode (mode "b"), registers, then fills the upvalues. */
static int dec_function(dec *d, uint64_t n, int depth)
{
    lua_State *L = d->L;
    if (!d->o->trusted)
        return dec_fail(d, SN_EUNTRUSTED, "function in a snapshot from an untrusted source");
    if (depth > d->o->max_depth)
        return dec_fail(d, SN_ELIMIT, "nesting deeper than %d", d->o->max_depth);
    if (n - 1 > 255)
        return dec_fail(d, SN_EPROTO, "function with %llu upvalues", (unsigned long long)n - 1);
    const unsigned char *head = d->p, *payload;
    size_t len;
    int type;
    int rc = dec_ext_take(d, &type, &payload, &len);
    if (rc != SN_OK)
        return rc;
    chunk code;
    rc = dec_bytecode(d, head, payload, len, &code);
    if (rc != SN_OK)
        return rc;
    int status = lua_load(L, chunk_reader, &code, "=snapshot", "b");
    free(code.owned);
    if (status == LUA_ERRMEM)
        return dec_fail(d, SN_ENOMEM, "out of memory loading a function");
    if (status != LUA_OK)
        return dec_fail(d, SN_EPROTO, "bad bytecode: %s", lua_tostring(L, -1));
    int nups = (int)(n - 1), fidx = lua_gettop(L);
    if (!has_upvalue(L, fidx, nups) || has_upvalue(L, fidx, nups + 1)) {
        lua_Debug ar;
        lua_pushvalue(L, fidx);
        lua_getinfo(L, ">u", &ar);
        return dec_fail(d, SN_EPROTO, "function has %d upvalues, the snapshot %llu", ar.nups,
                        (unsigned long long)n - 1);
    }
    dec_register(d);
    for (int i = 1; i <= nups; i++) {
        rc = dec_upvalue(d, fidx, i, depth);
        if (rc != SN_OK)
            return rc;
    }
    return SN_OK;
}

static int dec_cfunction(dec *d, const unsigned char *name, size_t len)
{
    lua_State *L = d->L;
    if (!d->names_fetched) {
        lua_rawgeti(L, d->cache, SLOT_NAME2FN); /* false until a C function name needed it */
        lua_replace(L, d->name2fn);
        d->names_fetched = 1;
    }
    for (;;) {
        if (lua_type(L, d->name2fn) == LUA_TTABLE) {
            lua_pushlstring(L, (const char *)name, len);
            if (lua_rawget(L, d->name2fn) == LUA_TFUNCTION)
                return SN_OK;
            lua_pop(L, 1);
        }
        if (d->names_rebuilt)
            return dec_fail(d, SN_ENOENT, "unknown C function '%.*s'", (int)(len > 60 ? 60 : len),
                            (const char *)name);
        names_build(L, d->cache);
        lua_replace(L, d->name2fn);
        lua_pop(L, 1);
        d->names_rebuilt = 1;
    }
}

/* A standalone ext value (header read into it): back-reference, globals marker or C function. */
static int dec_ext(dec *d, const sn_mpack_item *it)
{
    lua_State *L = d->L;
    const unsigned char *payload = it->data;
    size_t len = (size_t)it->v.u;
    int type = it->ext;
    switch (type) {
    case EXT_REF: {
        if (len != 1 && len != 2 && len != 4)
            return dec_fail(d, SN_EPROTO, "back-reference of %zu bytes", len);
        uint64_t seq = sn_mpack_get_be(payload, (int)len);
        if ((lua_Integer)seq >= d->nobjs)
            return dec_fail(d, SN_EPROTO, "back-reference to object %llu not yet decoded",
                            (unsigned long long)seq);
        lua_rawgeti(L, d->objs, (lua_Integer)seq + 1);
        return SN_OK;
    }
    case EXT_GLOBALS:
        if (!d->o->trusted)
            return dec_fail(d, SN_EUNTRUSTED, "globals reference from an untrusted source");
        lua_pushvalue(L, d->env);
        return SN_OK;
    case EXT_CFUNC:
        if (!d->o->trusted)
            return dec_fail(d, SN_EUNTRUSTED, "function in a snapshot from an untrusted source");
        return dec_cfunction(d, payload, len);
    case EXT_TABLE_MT:
    case EXT_FUNC:
        return dec_fail(d, SN_EPROTO, "ext type %d outside the head of an array", type);
    case EXT_ENV:
    case EXT_UPREF:
        return dec_fail(d, SN_EPROTO, "upvalue marker outside a function");
    default:
        return dec_fail(d, SN_EPROTO, "unknown ext type %d", type);
    }
}

static int dec_array(dec *d, uint64_t n, int depth)
{
    if (n > 0) {
        int type = dec_peek_ext(d);
        if (type == EXT_TABLE_MT || type == EXT_FUNC) {
            int rc = dec_open(d, depth, 0, 1);
            if (rc != SN_OK)
                return rc;
            return type == EXT_FUNC ? dec_function(d, n, depth) : dec_table_mt(d, n, depth);
        }
    }
    return dec_table(d, 0, n, depth);
}

/* Pushes one value. depth is that of the enclosing container (0 at the top). */
static int dec_value(dec *d, int depth)
{
    lua_State *L = d->L;
    sn_mpack_item it;
    int rc = dec_read(d, &it);
    if (rc != SN_OK)
        return rc;
    switch (it.type) {
    case SN_MPACK_NIL:
        lua_pushnil(L);
        return SN_OK;
    case SN_MPACK_BOOL:
        lua_pushboolean(L, (int)it.v.u);
        return SN_OK;
    case SN_MPACK_UINT:
        if (it.v.u > (uint64_t)INT64_MAX)
            return dec_fail(d, SN_EPROTO, "unsigned integer beyond the Lua integer range");
        lua_pushinteger(L, (lua_Integer)it.v.u);
        return SN_OK;
    case SN_MPACK_INT:
        lua_pushinteger(L, (lua_Integer)it.v.i);
        return SN_OK;
    case SN_MPACK_FLOAT:
        lua_pushnumber(L, (lua_Number)it.v.f);
        return SN_OK;
    case SN_MPACK_DOUBLE:
        lua_pushnumber(L, (lua_Number)it.v.d);
        return SN_OK;
    case SN_MPACK_STR:
    case SN_MPACK_BIN: /* bin is never written, read as a string */
        lua_pushlstring(L, (const char *)it.data, (size_t)it.v.u);
        return SN_OK;
    case SN_MPACK_ARRAY:
        return dec_array(d, it.v.u, depth + 1);
    case SN_MPACK_MAP:
        return dec_table(d, 1, it.v.u, depth + 1);
    case SN_MPACK_EXT:
        return dec_ext(d, &it);
    }
    return dec_fail(d, SN_EPROTO, "unknown value type");
}

/* The version byte and the array header of the top-level values. */
static int read_header(const unsigned char *p, size_t len, uint64_t *n, size_t *hdr)
{
    if (len < 2)
        return SN_EPROTO;
    if (p[0] != SN_SNAPSHOT_VERSION)
        return SN_ENOTSUP;
    const unsigned char *q = p + 1;
    sn_mpack_item it;
    if (sn_mpack_read(&q, p + len, &it) != SN_MPACK_OK || it.type != SN_MPACK_ARRAY)
        return SN_EPROTO;
    *n = it.v.u;
    *hdr = (size_t)(q - p);
    return *n <= len - *hdr ? SN_OK : SN_EPROTO;
}

int sn_snapshot_count(const char *data, size_t len, int *nvalues)
{
    uint64_t n;
    size_t hdr;
    int rc = read_header((const unsigned char *)data, len, &n, &hdr);
    if (rc == SN_OK && n > INT32_MAX)
        rc = SN_EPROTO;
    *nvalues = rc == SN_OK ? (int)n : 0;
    return rc;
}

/* Protected body of sn_snapshot_decode: arg 1 is the dec, arg 2 the env table. */
static int dec_main(lua_State *L)
{
    dec *d = lua_touserdata(L, 1);
    d->env = 2;
    luaL_checkstack(L, 16, NULL);
    if (lua_type(L, 3) == LUA_TTABLE) { /* the cache, looked up by the caller */
        d->cache = 3;
    } else {
        cache_push(L);
        d->cache = lua_gettop(L);
    }
    d->owns_cache = cache_take(L, d->cache);
    d->objs = work_table(L, d->cache, d->owns_cache, SLOT_DEC_OBJS);
    lua_pushnil(L); /* the name map, fetched at the first C function */
    d->name2fn = lua_gettop(L);

    uint64_t n;
    size_t hdr;
    size_t len = (size_t)(d->end - d->base);
    int rc = read_header(d->base, len, &n, &hdr);
    if (rc == SN_ENOTSUP) {
        dec_fail(d, rc, "snapshot version %u, this build reads version %d", d->base[0],
                 SN_SNAPSHOT_VERSION);
        return 0;
    }
    if (rc != SN_OK) {
        dec_fail(d, rc, "not a snapshot (bad or truncated header)");
        return 0;
    }
    d->p += hdr;
    if (n > INT32_MAX / 2 || !lua_checkstack(L, (int)n + 8)) {
        dec_fail(d, SN_ELIMIT, "%llu values do not fit on the Lua stack", (unsigned long long)n);
        return 0;
    }
    for (uint64_t i = 0; i < n; i++)
        if (dec_value(d, 0) != SN_OK)
            return 0;
    if (d->p != d->end) {
        dec_fail(d, SN_EPROTO, "%zu trailing bytes", dec_left(d));
        return 0;
    }
    return (int)n;
}

int sn_snapshot_decode(lua_State *L, const char *data, size_t len, const sn_snapshot_opts *o,
                       int *nvalues, char *err, size_t errlen)
{
    sn_snapshot_opts defaults;
    if (!o) {
        sn_snapshot_opts_init(&defaults);
        o = &defaults;
    }
    *nvalues = 0;
    int rc = check_opts(o, err, errlen);
    if (rc != SN_OK)
        return rc;
    int env = o->env_index ? lua_absindex(L, o->env_index) : 0;
    if (env && lua_type(L, env) != LUA_TTABLE) {
        set_err(err, errlen, "env_index %d is not a table", o->env_index);
        return SN_EINVAL;
    }
    if (!lua_checkstack(L, 8)) {
        set_err(err, errlen, "out of memory (Lua stack)");
        return SN_ENOMEM;
    }

    dec d; /* not memset whole: the map's slots are cleared when first used */
    d.code = SN_OK;
    d.what[0] = '\0';
    d.env = d.cache = d.objs = d.name2fn = 0;
    d.owns_cache = d.names_fetched = d.names_rebuilt = 0;
    d.nobjs = 0;
    d.protos.cap = d.protos.n = 0;
    d.L = L;
    d.o = o;
    d.base = d.p = (const unsigned char *)data;
    d.end = d.base + len;
    int top = lua_gettop(L), cache_at = top + 1;
    /* The cache table (nil before its first use) stays below the results: releasing it then
     * needs no second registry lookup. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
    lua_pushcfunction(L, dec_main);
    lua_pushlightuserdata(L, &d);
    if (env)
        lua_pushvalue(L, env);
    else
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushvalue(L, cache_at);
    int status = lua_pcall(L, 3, LUA_MULTRET, 0);

    if (d.code != SN_OK) {
        rc = d.code;
        set_err(err, errlen, "%s", d.what);
    } else if (status == LUA_ERRMEM) {
        rc = SN_ENOMEM;
        set_err(err, errlen, "out of memory");
    } else if (status != LUA_OK) {
        rc = SN_ELUA;
        const char *msg = lua_tostring(L, -1);
        set_err(err, errlen, "%s", msg ? msg : "Lua error");
    }
    if (rc != SN_OK)
        lua_settop(L, cache_at);
    else
        *nvalues = lua_gettop(L) - cache_at;
    map_free(L, &d.protos);
    if (lua_checkstack(L, 4))
        cache_release(L, cache_at, d.owns_cache, rc == SN_OK, SLOT_DEC_OBJS, d.nobjs);
    lua_remove(L, cache_at);
    return rc;
}
