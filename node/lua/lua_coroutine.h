/* lua_coroutine: coroutine.create/wrap/resume for sandboxed states: a coroutine runs on a
 * snapshot of its creator's globals, taken at its first resume (docs/lua-api.md section 1). */
#ifndef SN_LUA_COROUTINE_H
#define SN_LUA_COROUTINE_H

#include <lua.h>

/* sn_coroutine_open: replaces coroutine.create/wrap/resume of L with the snapshotting ones.
 * Call once, after sn_env_open. Raises only on out of memory. */
void sn_coroutine_open(lua_State *L);

/* sn_coroutine_forget: removes name from the private env of every sandboxed coroutine of L
 * (it just became a policy name: from now on they see it live). Raises only on out of
 * memory. */
void sn_coroutine_forget(lua_State *L, const char *name);

/* sn_coroutine_push_running_env: pushes the env of the code running on L: its sandboxed
 * coroutine's env, or the base env. Never raises. */
void sn_coroutine_push_running_env(lua_State *L);

#endif
