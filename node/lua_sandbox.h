/* lua_sandbox: private globals per actor, the _ENV[""] sharing policy, and coroutines
 * that run on a snapshot of their creator's globals (lua-api.md section 1). */
#ifndef SN_LUA_SANDBOX_H
#define SN_LUA_SANDBOX_H

#include <lua.h>

/* sn_sandbox_open: makes L's globals the actor's sandboxed environment and replaces
 * coroutine.create/wrap/resume with snapshotting versions. Call once, after the standard
 * libraries are open and before any script runs. Raises a Lua error only on out of memory
 * (call under lua_pcall). */
int sn_sandbox_open(lua_State *L);

/* sn_sandbox_policy_kind: 0 if name is not in L's sharing policy, 1 for a plain name,
 * 2 for a starred (process-wide) name. Never raises. */
int sn_sandbox_policy_kind(lua_State *L, const char *name);

#endif
