/* lua_sandbox: private globals per actor, the _ENV[""] sharing policy, and coroutines
 * that run on a snapshot of their creator's globals (docs/lua-api.md section 1): what the
 * other bindings use, made of lua_env, lua_policy and lua_coroutine. */
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

/* sn_sandbox_push_base: pushes the env of code running outside coroutines: the globals,
 * or on a worker the running job's env. Decoded functions are bound to it. */
void sn_sandbox_push_base(lua_State *L);

/* sn_sandbox_push_running: pushes the env of the code running on L (its coroutine's env,
 * or the base env): where a global name is looked up for it. Never raises. */
void sn_sandbox_push_running(lua_State *L);

/* sn_sandbox_push_starred: pushes a string of L's starred names, each NUL-terminated (what
 * a job carries so that its own env sees those names). */
void sn_sandbox_push_starred(lua_State *L);

/* sn_sandbox_seal: on a worker state after preload: the globals as they are become the view
 * every job env starts from. */
void sn_sandbox_seal(lua_State *L);
/* sn_sandbox_job_begin: pushes a fresh job env (reads see the sealed view, writes stay in
 * it, _G is itself), makes it the base env, and makes the policy the starred names of
 * names[0..len) (each NUL-terminated). Raises only on out of memory. */
void sn_sandbox_job_begin(lua_State *L, const char *names, size_t len);
/* sn_sandbox_job_end: the base env is the globals again and the policy is empty. */
void sn_sandbox_job_end(lua_State *L);

#endif
