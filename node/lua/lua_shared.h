/* lua_shared: starred (process-wide) names on the Lua side: reads with a per-state cache
 * by version, publishes on assignment, and the `__` atomic update. */
#ifndef SN_LUA_SHARED_H
#define SN_LUA_SHARED_H

#include <lua.h>

/* sn_starred_enabled: 1 when L's host has a starred store (a node's state). */
int sn_starred_enabled(lua_State *L);
/* sn_starred_get: pushes the value of starred name (string at index name): the cached copy
 * while the version is unchanged, else a fresh decode (functions bound to the base env). */
int sn_starred_get(lua_State *L, int name);
/* sn_starred_push_cache: pushes L's cache of starred values (made on first use, never
 * replaced: sn_starred_forget empties it). */
void sn_starred_push_cache(lua_State *L);
/* sn_starred_get_in: sn_starred_get with the cache at index cache (what the env metamethods
 * hold as an upvalue, saving a registry lookup per read). */
int sn_starred_get_in(lua_State *L, int cache, int name);
/* sn_starred_set: publishes the value at index val as the new version of name. Raises a
 * Lua error naming the value's path when it cannot travel. */
void sn_starred_set(lua_State *L, int name, int val);
/* sn_starred_adopt: publishes the value at val only if name was never set (used when a
 * global becomes starred: a value already in the store wins). Raises like sn_starred_set. */
void sn_starred_adopt(lua_State *L, int name, int val);
/* sn_starred_forget: drops the per-state cache (when the base env changes: a new job). */
void sn_starred_forget(lua_State *L);
/* sn_lua_shared_open: sets the global `__`. Raises only on out of memory. */
void sn_lua_shared_open(lua_State *L);

#endif
