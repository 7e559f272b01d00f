/* lua_bundle: the `bundle` table of STAGE: json, random (lua_bundle.c), proxy
 * (lua_bundle_proxy.c), viewof (lua_bundle_viewof.c), bson (lua_bundle_bson.c). The
 * functions below are shared by those files only. */
#ifndef SN_LUA_BUNDLE_H
#define SN_LUA_BUNDLE_H

#include "sn_buf.h"

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

/* The limits of the bundle functions, each a --set key (docs/cluster.md) with its default:
 * the deepest table nesting bundle.json and bundle.bson convert, either way (a cycle
 * reaches it too); the most bytes one bundle.viewof maps; the most fields of its record. */
#define SN_BUNDLE_DEPTH  200
#define SN_VIEWOF_MAX    ((size_t)1 << 30)
#define SN_VIEWOF_FIELDS 256

typedef struct sn_bundle_limits {
    int depth;         /* bundle_depth */
    size_t viewof_max; /* viewof_max */
    int viewof_fields; /* viewof_fields */
} sn_bundle_limits;

/* sn_bundle_limits_of: the node's settings (--set), or the defaults without a node. */
sn_bundle_limits sn_bundle_limits_of(lua_State *L);

/* sn_bundle_limit_hit: logs "FN: msg" (a limit was reached; fn NULL: msg alone) as a
 * warning of the calling actor; the caller then raises it or returns it. */
void sn_bundle_limit_hit(lua_State *L, const char *fn, const char *msg);

/* sn_bundle_open: sets the global `bundle`. Raises only on out of memory. */
void sn_bundle_open(lua_State *L);

/* The C resources of one conversion, in a userdata whose __gc frees them, so a Lua error
 * (out of memory) in the middle leaks nothing. */
typedef struct sn_bundle_box {
    void *json; /* a cJSON tree */
    void *res;  /* any other resource, freed by res_free */
    void (*res_free)(void *res);
    sn_buf buf;
} sn_bundle_box;

/* sn_bundle_box_new: pushes a new empty box and returns it. Raises on out of memory. */
sn_bundle_box *sn_bundle_box_new(lua_State *L);

/* The path of the value a walk is at ("a.b[3]"), for error messages; cut past its size. */
typedef struct sn_bundle_path {
    char s[192];
    size_t len;
} sn_bundle_path;

/* sn_bundle_path_push: appends the key at index key ("[3]" for an integer, ".name" else);
 * returns the length to give sn_bundle_path_pop to take it off again. */
size_t sn_bundle_path_push(sn_bundle_path *p, lua_State *L, int key);
void sn_bundle_path_pop(sn_bundle_path *p, size_t len);
/* sn_bundle_path_text: the path, "(top)" at the top level. */
const char *sn_bundle_path_text(const sn_bundle_path *p);

/* sn_bundle_is_array: 1 when the keys of the table at idx (absolute) are exactly 1..n, n > 0
 * (then *len = n); json and bson write such a table as an array. */
int sn_bundle_is_array(lua_State *L, int idx, lua_Integer *len);

/* sn_bundle_metatable: pushes the metatable named name, made by fns on first use; its
 * __metatable hides it from scripts (getmetatable sees the name, setmetatable refuses). */
void sn_bundle_metatable(lua_State *L, const char *name, const luaL_Reg *fns);

int sn_bundle_proxy(lua_State *L);  /* bundle.proxy */
int sn_bundle_viewof(lua_State *L); /* bundle.viewof */
int sn_bundle_bson(lua_State *L);   /* bundle.bson */

#endif
