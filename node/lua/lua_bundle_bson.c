/* lua_bundle_bson: bundle.bson(p): a table becomes a BSON document (a string), a BSON
 * document becomes a table, through libbson (docs/lua-api.md). */
#include "lua_bundle.h"
#include "lua_host.h"

#include <bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct benc {
    lua_State *L;
    int depth_max;
    sn_bundle_path path;
    char err[256];
} benc;

static void free_bson(void *b)
{
    bson_destroy(b);
}

static int append_table(benc *e, bson_t *doc, int idx, int depth);

/* Appends the value at idx under key. */
static int append_value(benc *e, bson_t *doc, const char *key, int idx, int depth)
{
    lua_State *L = e->L;
    int ok = 1;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        ok = bson_append_bool(doc, key, -1, lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer i = lua_tointeger(L, idx);
            ok = i >= INT32_MIN && i <= INT32_MAX ? bson_append_int32(doc, key, -1, (int32_t)i)
                                                  : bson_append_int64(doc, key, -1, i);
        } else {
            ok = bson_append_double(doc, key, -1, lua_tonumber(L, idx));
        }
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (n <= INT32_MAX && bson_utf8_validate(s, n, false))
            ok = bson_append_utf8(doc, key, -1, s, (int)n);
        else if (n <= INT32_MAX) /* not text: binary, which comes back as the same string */
            ok = bson_append_binary(doc, key, -1, BSON_SUBTYPE_BINARY, (const uint8_t *)s,
                                    (uint32_t)n);
        else
            ok = 0;
        break;
    }
    case LUA_TTABLE: {
        if (depth + 1 >= e->depth_max) { /* this table's depth; the top one's is 0 */
            snprintf(e->err, sizeof e->err,
                     "%s: tables nested deeper than %d (a cycle?), "
                     "the limit bundle_depth",
                     sn_bundle_path_text(&e->path), e->depth_max);
            sn_bundle_limit_hit(L, "bundle.bson", e->err);
            return -1;
        }
        lua_Integer n;
        bson_t child;
        int array = sn_bundle_is_array(L, lua_absindex(L, idx), &n);
        ok = array ? bson_append_array_begin(doc, key, -1, &child)
                   : bson_append_document_begin(doc, key, -1, &child);
        if (!ok) break;
        if (append_table(e, &child, idx, depth + 1) != 0) {
            array ? bson_append_array_end(doc, &child) : bson_append_document_end(doc, &child);
            return -1;
        }
        ok = array ? bson_append_array_end(doc, &child) : bson_append_document_end(doc, &child);
        break;
    }
    default:
        snprintf(e->err, sizeof e->err, "%s: a %s has no BSON form", sn_bundle_path_text(&e->path),
                 luaL_typename(L, idx));
        return -1;
    }
    if (!ok) {
        snprintf(e->err, sizeof e->err, "%s: the document would pass BSON's 2 GiB",
                 sn_bundle_path_text(&e->path));
        return -1;
    }
    return 0;
}

/* Appends the entries of the table at idx: an array's under "0", "1", ...; a table's under
 * its keys (numbers as their decimal text). */
static int append_table(benc *e, bson_t *doc, int idx, int depth)
{
    lua_State *L = e->L;
    sn_lua_budget_check(L); /* once a table: a long conversion is one entry's CPU */
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 6, "bundle.bson");
    lua_Integer n;
    if (sn_bundle_is_array(L, idx, &n)) {
        for (lua_Integer i = 1; i <= n; i++) {
            char key[24];
            snprintf(key, sizeof key, "%lld", (long long)(i - 1));
            lua_pushinteger(L, i);
            size_t mark = sn_bundle_path_push(&e->path, L, -1);
            lua_pop(L, 1);
            lua_rawgeti(L, idx, i);
            int r = append_value(e, doc, key, -1, depth);
            lua_pop(L, 1);
            if (r) return -1;
            sn_bundle_path_pop(&e->path, mark);
        }
        return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int vidx = lua_gettop(L);
        size_t mark = sn_bundle_path_push(&e->path, L, -2);
        int kt = lua_type(L, -2);
        const char *key = NULL;
        size_t kn = 0;
        if (kt == LUA_TSTRING) {
            key = lua_tolstring(L, -2, &kn);
        } else if (kt == LUA_TNUMBER) {
            lua_pushvalue(L, -2);
            key = luaL_tolstring(L, -1, &kn); /* its decimal text */
        }
        int r;
        if (!key || strlen(key) != kn) {
            snprintf(e->err, sizeof e->err, "%s: a %s key has no BSON form",
                     sn_bundle_path_text(&e->path),
                     key ? "string with a zero byte as" : lua_typename(L, kt));
            r = -1;
        } else {
            r = append_value(e, doc, key, vidx, depth);
        }
        lua_settop(L, vidx - 1); /* the key stays for lua_next */
        if (r) {
            lua_pop(L, 1);
            return -1;
        }
        sn_bundle_path_pop(&e->path, mark);
    }
    return 0;
}

/* A document key that is the canonical decimal text of an integer comes back as that
 * integer (the inverse of encoding a table's number keys). */
static void push_key(lua_State *L, const char *k)
{
    char *end;
    long long v = strtoll(k, &end, 10);
    char back[24];
    if (*k && *end == '\0' && snprintf(back, sizeof back, "%lld", v) > 0 && strcmp(back, k) == 0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushstring(L, k);
}

/* Decoding: the depth limit, and whether a document went past it. */
typedef struct bdec {
    int depth_max;
    int too_deep;
} bdec;

static int push_doc(lua_State *L, bdec *d, bson_iter_t *it, int array, int depth);

/* Pushes the value at it; 0 when it has no Lua form (null, undefined, ...). */
static int push_bson_value(lua_State *L, bdec *d, bson_iter_t *it, int depth)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        lua_pushnumber(L, bson_iter_double(it));
        return 1;
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        lua_pushlstring(L, s, n);
        return 1;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bson_iter_t child;
        if (depth + 1 >= d->depth_max) { /* this document's depth; the top one's is 0 */
            d->too_deep = 1;
            return 0;
        }
        if (!bson_iter_recurse(it, &child)) return 0;
        return push_doc(L, d, &child, bson_iter_type(it) == BSON_TYPE_ARRAY, depth + 1);
    }
    case BSON_TYPE_BINARY: {
        uint32_t n;
        const uint8_t *b;
        bson_iter_binary(it, NULL, &n, &b);
        lua_pushlstring(L, (const char *)b, n);
        return 1;
    }
    case BSON_TYPE_BOOL:
        lua_pushboolean(L, bson_iter_bool(it));
        return 1;
    case BSON_TYPE_INT32:
        lua_pushinteger(L, bson_iter_int32(it));
        return 1;
    case BSON_TYPE_INT64:
        lua_pushinteger(L, bson_iter_int64(it));
        return 1;
    case BSON_TYPE_DATE_TIME:
        lua_pushinteger(L, bson_iter_date_time(it));
        return 1;
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        lua_pushstring(L, hex);
        return 1;
    }
    case BSON_TYPE_TIMESTAMP: {
        uint32_t t, i;
        bson_iter_timestamp(it, &t, &i);
        lua_pushinteger(L, ((lua_Integer)t << 32) | i);
        return 1;
    }
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t dec;
        char s[BSON_DECIMAL128_STRING];
        bson_iter_decimal128(it, &dec);
        bson_decimal128_to_string(&dec, s);
        lua_pushstring(L, s);
        return 1;
    }
    default:
        return 0;
    }
}

static int push_doc(lua_State *L, bdec *d, bson_iter_t *it, int array, int depth)
{
    sn_lua_budget_check(L);
    luaL_checkstack(L, 4, "bundle.bson");
    lua_newtable(L);
    lua_Integer i = 1;
    while (bson_iter_next(it)) {
        if (array)
            lua_pushinteger(L, i++);
        else
            push_key(L, bson_iter_key(it));
        if (push_bson_value(L, d, it, depth))
            lua_rawset(L, -3);
        else
            lua_pop(L, 1);
    }
    return 1;
}

int sn_bundle_bson(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TFUNCTION) {
        lua_call(L, lua_gettop(L) - 1, 1);
        lua_insert(L, 1);
        lua_settop(L, 1);
    }
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t n;
        const uint8_t *s = (const uint8_t *)lua_tolstring(L, 1, &n);
        uint32_t declared = n >= 4 ? (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
                                         (uint32_t)s[3] << 24
                                   : 0;
        bson_t doc;
        size_t bad = 0;
        if (n < 5 || declared != n) {
            lua_pushnil(L);
            lua_pushfstring(L, "bundle.bson: not BSON: %d bytes, the header says %d", (int)n,
                            (int)declared);
            return 2;
        }
        if (!bson_init_static(&doc, s, n) || !bson_validate(&doc, BSON_VALIDATE_NONE, &bad)) {
            lua_pushnil(L);
            lua_pushfstring(L, "bundle.bson: not BSON: malformed at byte %d", (int)bad + 1);
            return 2;
        }
        bson_iter_t it;
        bson_iter_init(&it, &doc);
        bdec d = {.depth_max = sn_bundle_limits_of(L).depth};
        push_doc(L, &d, &it, 0, 0);
        if (d.too_deep) {
            lua_pushnil(L);
            lua_pushfstring(L,
                            "bundle.bson: documents nested deeper than %d, the limit "
                            "bundle_depth",
                            d.depth_max);
            sn_bundle_limit_hit(L, NULL, lua_tostring(L, -1));
            return 2;
        }
        return 1;
    }
    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushnil(L);
        lua_pushfstring(L, "bundle.bson: expected a table or a BSON string, got %s",
                        luaL_typename(L, 1));
        return 2;
    }
    sn_bundle_box *box = sn_bundle_box_new(L);
    bson_t *doc = bson_new();
    box->res = doc;
    box->res_free = free_bson;
    benc e = {.L = L, .depth_max = sn_bundle_limits_of(L).depth};
    if (append_table(&e, doc, 1, 0) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "bundle.bson: %s", e.err);
        return 2;
    }
    lua_pushlstring(L, (const char *)bson_get_data(doc), doc->len);
    return 1;
}
