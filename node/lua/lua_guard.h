/* lua_guard: what a script may not reach, so that one actor cannot hurt another or the
 * node: os.exit, bytecode, the debug hooks (the governor's) and finalizers. */
#ifndef SN_LUA_GUARD_H
#define SN_LUA_GUARD_H

#include <lua.h>

/* The message every refused binary chunk gets (load, loadfile, dofile, require). */
#define SN_GUARD_BINARY "binary chunks are refused in scripts (text only)"
/* The message a metatable with __gc gets (setmetatable, debug.setmetatable). */
#define SN_GUARD_GC "a metatable with __gc is refused in scripts (docs/governor.md)"

/* sn_lua_guard_open: replaces, in L's standard library: os.exit (an error naming stage.exit),
 * load/loadfile/dofile and the Lua searcher of require (text chunks only), debug.sethook
 * (refused) and debug.gethook (never shows the governor's hook), setmetatable and
 * debug.setmetatable (a metatable with __gc is refused), and locks the metatable of files.
 * After luaL_openlibs, before the sandbox. Raises on out of memory. */
void sn_lua_guard_open(lua_State *L);

/* sn_lua_guard_env_source: push_env (no arguments, one result) names the globals a chunk
 * loaded without an env gets (load, loadfile, dofile, require); without one, the state's
 * global table. Raises only on out of memory. */
void sn_lua_guard_env_source(lua_State *L, lua_CFunction push_env);

/* sn_lua_guard_seal: the Lua function at idx keeps its upvalues from the debug library, as
 * C functions do (the sandbox's own Lua functions hold its C functions). Raises only on out
 * of memory; call after sn_lua_guard_open. */
void sn_lua_guard_seal(lua_State *L, int idx);

/* sn_lua_guard_loadfile: luaL_loadfilex in text mode, the refusal of a binary chunk worded as
 * SN_GUARD_BINARY. Same results as luaL_loadfilex. */
int sn_lua_guard_loadfile(lua_State *L, const char *path);

#endif
