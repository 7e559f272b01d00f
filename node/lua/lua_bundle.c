/* lua_bundle: bundle.json (cJSON) and bundle.random (WELL512), the shared helpers of the
 * bundle files, and the `bundle` table. */
#include "lua_bundle.h"
#include "lua_host.h"
#include "sn_node.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- shared helpers --------------------------------------------------------------------- */

static int box_gc(lua_State *L)
{
    sn_bundle_box *box = lua_touserdata(L, 1);
    if (box->json) cJSON_Delete(box->json);
    box->json = NULL;
    if (box->res && box->res_free) box->res_free(box->res);
    box->res = NULL;
    sn_buf_fini(&box->buf);
    return 0;
}

void sn_bundle_metatable(lua_State *L, const char *name, const luaL_Reg *fns)
{
    if (luaL_newmetatable(L, name)) {
        luaL_setfuncs(L, fns, 0);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__metatable");
    }
}

sn_bundle_box *sn_bundle_box_new(lua_State *L)
{
    sn_bundle_box *box = lua_newuserdata(L, sizeof *box);
    memset(box, 0, sizeof *box);
    sn_buf_init(&box->buf);
    static const luaL_Reg fns[] = {{"__gc", box_gc}, {NULL, NULL}};
    sn_bundle_metatable(L, "bundle.box", fns);
    lua_setmetatable(L, -2);
    return box;
}

sn_bundle_limits sn_bundle_limits_of(lua_State *L)
{
    sn_bundle_limits l = {SN_BUNDLE_DEPTH, SN_VIEWOF_MAX, SN_VIEWOF_FIELDS};
    sn_lua_host *host = sn_lua_host_of(L);
    const sn_opts *o = host && host->node ? sn_node_opts(host->node) : NULL;
    if (o && o->bundle_depth > 0) l.depth = o->bundle_depth;
    if (o && o->viewof_max > 0) l.viewof_max = (size_t)o->viewof_max;
    if (o && o->viewof_fields > 0) l.viewof_fields = o->viewof_fields;
    return l;
}

void sn_bundle_limit_hit(lua_State *L, const char *fn, const char *msg)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (host)
        sn_log_write(host->log, SN_LOG_WARN, host->who, "%s%s%s", fn ? fn : "", fn ? ": " : "",
                     msg);
}

size_t sn_bundle_path_push(sn_bundle_path *p, lua_State *L, int key)
{
    size_t old = p->len;
    size_t room = sizeof p->s - p->len;
    int n;
    if (lua_isinteger(L, key))
        n = snprintf(p->s + p->len, room, "[%lld]", (long long)lua_tointeger(L, key));
    else if (lua_type(L, key) == LUA_TSTRING)
        n = snprintf(p->s + p->len, room, "%s%s", p->len ? "." : "", lua_tostring(L, key));
    else
        n = snprintf(p->s + p->len, room, "[%s]", luaL_typename(L, key));
    p->len = n < 0 ? p->len : (size_t)n >= room ? sizeof p->s - 1 : p->len + (size_t)n;
    return old;
}

void sn_bundle_path_pop(sn_bundle_path *p, size_t len)
{
    p->len = len;
    p->s[len] = '\0';
}

const char *sn_bundle_path_text(const sn_bundle_path *p)
{
    return p->len ? p->s : "(top)";
}

/* ---- bundle.json: Lua -> JSON text ------------------------------------------------------ */

typedef struct enc {
    lua_State *L;
    int depth_max;
    unsigned steps; /* values written; the CPU budget is checked every 4096 */
    sn_bundle_box *box;
    sn_bundle_path path;
    char err[256];
} enc;

static int out(enc *e, const char *s, size_t n)
{
    if (sn_buf_reserve(&e->box->buf, n) != 0) {
        snprintf(e->err, sizeof e->err, "out of memory");
        return -1;
    }
    memcpy(e->box->buf.data + e->box->buf.len, s, n);
    e->box->buf.len += n;
    return 0;
}

static int out_string(enc *e, const char *s, size_t n)
{
    if (out(e, "\"", 1)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        int r;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            r = out(e, esc, 2);
        } else if (c < 0x20) {
            r = out(e, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c));
        } else {
            size_t j = i;
            while (j < n && s[j] != '"' && s[j] != '\\' && (unsigned char)s[j] >= 0x20)
                j++;
            r = out(e, s + i, j - i);
            i = j - 1;
        }
        if (r) return -1;
    }
    return out(e, "\"", 1);
}

static int out_number(enc *e, int idx)
{
    char num[64];
    if (lua_isinteger(e->L, idx))
        return out(e, num,
                   (size_t)snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(e->L, idx)));
    lua_Number d = lua_tonumber(e->L, idx);
    if (!isfinite(d)) {
        snprintf(e->err, sizeof e->err, "%s: %s has no JSON form", sn_bundle_path_text(&e->path),
                 isnan(d) ? "nan" : "an infinite number");
        return -1;
    }
    int n = snprintf(num, sizeof num, "%.17g", d);
    if (!strpbrk(num, ".eEn")) /* keep it a float when read back */
        n += snprintf(num + n, sizeof num - (size_t)n, ".0");
    return out(e, num, (size_t)n);
}

int sn_bundle_is_array(lua_State *L, int idx, lua_Integer *len)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
        count++;
    }
    *len = count;
    return count > 0 && max == count;
}

static int encode(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    idx = lua_absindex(L, idx);
    if ((++e->steps & 4095) == 0)
        sn_lua_budget_check(L); /* a long conversion is still one entry's CPU */
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return out(e, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? out(e, "true", 4) : out(e, "false", 5);
    case LUA_TNUMBER:
        return out_number(e, idx);
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return out_string(e, s, n);
    }
    case LUA_TTABLE:
        break;
    default:
        snprintf(e->err, sizeof e->err, "%s: a %s has no JSON form", sn_bundle_path_text(&e->path),
                 luaL_typename(L, idx));
        return -1;
    }
    if (depth >= e->depth_max) {
        snprintf(e->err, sizeof e->err,
                 "%s: tables nested deeper than %d (a cycle?), "
                 "the limit bundle_depth",
                 sn_bundle_path_text(&e->path), e->depth_max);
        sn_bundle_limit_hit(L, "bundle.json", e->err);
        return -1;
    }
    luaL_checkstack(L, 4, "bundle.json");
    lua_Integer n;
    if (sn_bundle_is_array(L, idx, &n)) {
        if (out(e, "[", 1)) return -1;
        for (lua_Integer i = 1; i <= n; i++) {
            lua_pushinteger(L, i);
            size_t mark = sn_bundle_path_push(&e->path, L, -1);
            lua_pop(L, 1);
            lua_rawgeti(L, idx, i);
            int r = (i > 1 && out(e, ",", 1)) || encode(e, -1, depth + 1);
            lua_pop(L, 1);
            if (r) return -1;
            sn_bundle_path_pop(&e->path, mark);
        }
        return out(e, "]", 1);
    }
    if (out(e, "{", 1)) return -1;
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t mark = sn_bundle_path_push(&e->path, L, -2);
        int kt = lua_type(L, -2);
        int r = !first && out(e, ",", 1);
        if (!r && kt == LUA_TSTRING) {
            size_t kn;
            const char *k = lua_tolstring(L, -2, &kn);
            r = out_string(e, k, kn);
        } else if (!r && kt == LUA_TNUMBER) {
            /* a number key becomes its decimal text, as JSON keys are strings */
            lua_pushvalue(L, -2);
            size_t kn;
            const char *k = luaL_tolstring(L, -1, &kn);
            r = out_string(e, k, kn);
            lua_pop(L, 2);
        } else if (!r) {
            snprintf(e->err, sizeof e->err, "%s: a %s key has no JSON form",
                     sn_bundle_path_text(&e->path), lua_typename(L, kt));
            r = -1;
        }
        r = r || out(e, ":", 1) || encode(e, -1, depth + 1);
        lua_pop(L, 1);
        if (r) {
            lua_pop(L, 1);
            return -1;
        }
        sn_bundle_path_pop(&e->path, mark);
        first = 0;
    }
    return out(e, "}", 1);
}

/* ---- bundle.json: JSON text -> Lua ------------------------------------------------------ */

/* Pushes v (a table at depth `depth`, the top one 0); a table at *depth_max or deeper is
 * left out and *depth_max set to -1. */
static void push_json(lua_State *L, const cJSON *v, int depth, int *depth_max)
{
    luaL_checkstack(L, 3, "bundle.json");
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        sn_lua_budget_check(L); /* once a table: a long conversion is one entry's CPU */
    if (depth >= *depth_max && (cJSON_IsArray(v) || cJSON_IsObject(v))) {
        *depth_max = -1;
        lua_pushnil(L);
        return;
    }
    if (cJSON_IsFalse(v) || cJSON_IsTrue(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        /* integral values within 2^53 are integers; the text's form is not kept by cJSON */
        if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(v)) {
        lua_pushstring(L, v->valuestring);
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int array = cJSON_IsArray(v);
        lua_createtable(L, array ? cJSON_GetArraySize(v) : 0, array ? 0 : 4);
        lua_Integer i = 1;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            if (cJSON_IsNull(c)) continue; /* nil: the key is absent (in an array, a hole) */
            push_json(L, c, depth + 1, depth_max);
            if (array)
                lua_rawseti(L, -2, i);
            else
                lua_setfield(L, -2, c->string);
        }
    } else {
        lua_pushnil(L);
    }
}

/* The value at path ("a.b.#2": object members, #N the Nth element of an array from 0), or
 * NULL. */
static const cJSON *select_path(const cJSON *root, const char *path)
{
    const cJSON *v = root;
    char part[256];
    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part) return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        if (part[0] == '#') {
            char *end;
            long i = strtol(part + 1, &end, 10);
            v = cJSON_IsArray(v) && *end == '\0' && i >= 0 ? cJSON_GetArrayItem(v, (int)i) : NULL;
        } else {
            v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, part) : NULL;
        }
        path += dot ? n + 1 : n;
    }
    return v;
}

/* bundle.json(text|file [, select]): the second argument picks a part: a number the element
 * of an array (from 0), a string a member, a table {name = "a.#2", ...} several by path. */
static int json_decode(lua_State *L)
{
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    const char *t = s;
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
        t++;
    if (*t != '{' && *t != '[') { /* a file name */
        FILE *f = fopen(t, "rb");
        if (!f) {
            lua_pushnil(L);
            lua_pushfstring(L, "bundle.json: cannot read '%s': %s", t, strerror(errno));
            return 2;
        }
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        size_t got;
        do {
            char *p = luaL_prepbuffer(&b);
            got = fread(p, 1, LUAL_BUFFERSIZE, f);
            luaL_addsize(&b, got);
        } while (got == LUAL_BUFFERSIZE);
        int failed = ferror(f);
        fclose(f);
        luaL_pushresult(&b);
        if (failed) {
            lua_pushnil(L);
            lua_pushfstring(L, "bundle.json: cannot read '%s'", t);
            return 2;
        }
        lua_replace(L, 1);
        s = lua_tolstring(L, 1, &n);
    }
    sn_bundle_box *box = sn_bundle_box_new(L);
    const char *end = NULL;
    box->json = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!box->json) {
        size_t at = end && end >= s ? (size_t)(end - s) : 0;
        lua_pushnil(L);
        if (at >= n)
            lua_pushstring(L, "bundle.json: not JSON: the text ends early");
        else {
            const char *near = lua_pushlstring(L, s + at, n - at > 16 ? 16 : n - at);
            lua_pushfstring(L, "bundle.json: not JSON at byte %d (near '%s')", (int)at + 1, near);
            lua_remove(L, -2);
        }
        return 2;
    }
    const cJSON *root = box->json;
    int depth_max = sn_bundle_limits_of(L).depth;
    switch (lua_type(L, 2)) {
    case LUA_TNUMBER:
        push_json(L,
                  cJSON_IsArray(root) ? cJSON_GetArrayItem(root, (int)lua_tointeger(L, 2)) : NULL,
                  0, &depth_max);
        break;
    case LUA_TSTRING:
        push_json(L,
                  cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, lua_tostring(L, 2))
                                       : NULL,
                  0, &depth_max);
        break;
    case LUA_TTABLE: {
        lua_newtable(L);
        int result = lua_gettop(L);
        lua_Integer next = 1;
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            const cJSON *v =
                lua_type(L, -1) == LUA_TSTRING ? select_path(root, lua_tostring(L, -1)) : NULL;
            if (v) {
                push_json(L, v, 0, &depth_max);
                if (lua_type(L, -3) == LUA_TSTRING) {
                    lua_pushvalue(L, -3);
                    lua_insert(L, -2);
                    lua_rawset(L, result);
                } else {
                    lua_rawseti(L, result, next++);
                }
            }
            lua_pop(L, 1);
        }
        break;
    }
    default:
        push_json(L, root, 0, &depth_max);
    }
    if (depth_max < 0) {
        int limit = sn_bundle_limits_of(L).depth;
        lua_pushnil(L);
        lua_pushfstring(L, "bundle.json: JSON nested deeper than %d, the limit bundle_depth",
                        limit);
        sn_bundle_limit_hit(L, NULL, lua_tostring(L, -1));
        return 2;
    }
    cJSON_Delete(box->json);
    box->json = NULL;
    return 1;
}

/* bundle.json(p [, select]): a table becomes JSON text; text (or a file of it) becomes
 * Lua values. A function is called with the other arguments and its result converted. Bad
 * input returns nil and a message naming what and where. */
static int l_json(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TFUNCTION) {
        lua_call(L, lua_gettop(L) - 1, 1);
        lua_insert(L, 1);
        lua_settop(L, 1);
    }
    switch (lua_type(L, 1)) {
    case LUA_TSTRING:
        return json_decode(L);
    case LUA_TTABLE: {
        enc e = {.L = L, .depth_max = sn_bundle_limits_of(L).depth};
        e.box = sn_bundle_box_new(L);
        if (encode(&e, 1, 0) != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "bundle.json: %s", e.err);
            return 2;
        }
        lua_pushlstring(L, e.box->buf.data, e.box->buf.len);
        return 1;
    }
    default:
        lua_pushnil(L);
        lua_pushfstring(L, "bundle.json: expected a table, JSON text or a file name, got %s",
                        luaL_typename(L, 1));
        return 2;
    }
}

/* ---- bundle.random: WELL512 (Chris Lomont's public-domain form) ------------------------ */

enum { WELL_N = 16 };

typedef struct well512 {
    uint32_t state[WELL_N];
    unsigned index;
} well512;

static void well_seed(well512 *w, uint64_t seed, int64_t delta)
{
    w->index = 0;
    for (int i = 0; i < WELL_N; i++) {
        w->state[i] = (uint32_t)seed;
        seed += seed + (uint64_t)delta;
    }
}

static uint32_t well_next(well512 *w)
{
    uint32_t *s = w->state;
    uint32_t a, b, c, d;
    a = s[w->index];
    c = s[(w->index + 13) & 15];
    b = a ^ c ^ (a << 16) ^ (c << 15);
    c = s[(w->index + 9) & 15];
    c ^= c >> 11;
    a = s[w->index] = b ^ c;
    d = a ^ ((a << 5) & 0xDA442D24u);
    w->index = (w->index + 15) & 15;
    a = s[w->index];
    s[w->index] = a ^ b ^ d ^ (a << 2) ^ (b << 18) ^ (c << 28);
    return s[w->index];
}

/* [0, 1) with 53 bits */
static double well_float(well512 *w)
{
    uint64_t hi = well_next(w) >> 5, lo = well_next(w) >> 6;
    return (double)(hi * 67108864u + lo) / 9007199254740992.0;
}

/* The state's own generator (upvalue 1 of bundle.random), seeded from the kernel. */
static well512 *own_generator(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* Reads a random table's state: [1..16] the state, [0] the index, [""] a seed (a number,
 * or {seed, delta}). A table without state starts from the state's own generator. */
static void read_state(lua_State *L, int t, well512 *w)
{
    well512 *own = own_generator(L);
    for (int i = 0; i < WELL_N; i++)
        w->state[i] = well_next(own);
    w->index = 0;
    for (int i = 0; i <= WELL_N; i++) {
        if (lua_rawgeti(L, t, i) == LUA_TNUMBER) {
            lua_Integer v = (lua_Integer)lua_tonumber(L, -1);
            if (i == 0)
                w->index = (unsigned)v & 15;
            else
                w->state[i - 1] = (uint32_t)v;
        }
        lua_pop(L, 1);
    }
    lua_pushliteral(L, "");
    int kt = lua_rawget(L, t);
    if (kt == LUA_TNUMBER) {
        well_seed(w, (uint64_t)lua_tointeger(L, -1), 1024);
    } else if (kt == LUA_TTABLE) {
        lua_Integer seed = (lua_Integer)time(NULL), delta = 1024;
        if (lua_rawgeti(L, -1, 1) == LUA_TNUMBER) seed = lua_tointeger(L, -1);
        if (lua_rawgeti(L, -2, 2) == LUA_TNUMBER) delta = lua_tointeger(L, -1);
        lua_pop(L, 2);
        well_seed(w, (uint64_t)seed, delta);
    }
    lua_pop(L, 1);
}

static void write_state(lua_State *L, int t, const well512 *w)
{
    for (int i = 0; i < WELL_N; i++) {
        lua_pushinteger(L, w->state[i]);
        lua_rawseti(L, t, i + 1);
    }
    lua_pushinteger(L, w->index);
    lua_rawseti(L, t, 0);
    /* the seed was used: leaving it would reseed on every call */
    lua_pushliteral(L, "");
    lua_pushnil(L);
    lua_rawset(L, t);
}

/* One draw from w with the arguments from index `first`: none -> an integer in
 * [1, maxinteger]; (e) -> [1, e]; (s, e) -> [s, e]. */
static int draw(lua_State *L, well512 *w, int first, int last)
{
    int nargs = last - first + 1;
    lua_Integer low = 1, up = LUA_MAXINTEGER;
    if (nargs == 1) {
        up = luaL_checkinteger(L, first);
    } else if (nargs >= 2) {
        low = luaL_checkinteger(L, first);
        up = luaL_checkinteger(L, first + 1);
    }
    luaL_argcheck(L, low <= up, first, "interval is empty");
    luaL_argcheck(L, low >= 0 || up <= LUA_MAXINTEGER + low, first, "interval too large");
    double r = well_float(w) * ((double)(up - low) + 1.0);
    lua_Integer v = (lua_Integer)r;
    lua_pushinteger(L, v > up - low ? up : low + v);
    return 1;
}

/* The `random` given to bundle.random(R, function (random) ... end): draws from R's
 * generator (upvalue 1). With no arguments, a float in [0, 1). */
static int group_random(lua_State *L)
{
    well512 *w = lua_touserdata(L, lua_upvalueindex(1));
    if (lua_gettop(L) == 0) {
        lua_pushnumber(L, well_float(w));
        return 1;
    }
    return draw(L, w, 1, lua_gettop(L));
}

/* bundle.random() -> [0, 1); bundle.random([R,] [s,] [e]); bundle.random([R,] function
 * (random) ... end) -> the function's results. R keeps the generator's state between calls. */
static int l_random(lua_State *L)
{
    if (lua_gettop(L) == 0) {
        lua_pushnumber(L, well_float(own_generator(L)));
        return 1;
    }
    int t = lua_type(L, 1) == LUA_TTABLE;
    int first = t ? 2 : 1, last = lua_gettop(L), gen = lua_upvalueindex(1);
    well512 *w = own_generator(L);
    if (t) { /* R's generator, a userdata so that a group's `random` can share it */
        w = lua_newuserdata(L, sizeof *w);
        gen = lua_gettop(L);
        read_state(L, 1, w);
    }
    int nres = 1;
    if (lua_type(L, first) == LUA_TFUNCTION) {
        int top = lua_gettop(L);
        lua_pushvalue(L, first);
        lua_pushvalue(L, gen);
        lua_pushcclosure(L, group_random, 1);
        lua_call(L, 1, LUA_MULTRET);
        nres = lua_gettop(L) - top;
    } else {
        draw(L, w, first, last);
    }
    if (t) write_state(L, 1, w);
    return nres;
}

static const luaL_Reg bundle_fns[] = {
    {"json", l_json},
    {"bson", sn_bundle_bson},
    {"proxy", sn_bundle_proxy},
    {"viewof", sn_bundle_viewof},
    {NULL, NULL},
};

/* package.preload's loader: the library itself (upvalue 1). */
static int the_library(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    return 1;
}

void sn_bundle_open(lua_State *L)
{
    luaL_newlib(L, bundle_fns);
    well512 *own = lua_newuserdata(L, sizeof *own);
    uint64_t seed[2] = {0, 0};
    if (getrandom(seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        seed[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)own; /* still differs per state */
        seed[1] = (uint64_t)clock();
    }
    well_seed(own, seed[0], (int64_t)(seed[1] | 1));
    lua_pushcclosure(L, l_random, 1);
    lua_setfield(L, -2, "random");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* require("bundle"), as STAGE */
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, the_library, 1);
    lua_setfield(L, -2, "bundle");
    lua_pop(L, 1);
    lua_setglobal(L, "bundle");
}
