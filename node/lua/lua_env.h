/* lua_env: environments (tables of globals) whose snapshots cost O(1): the actor's globals,
 * each sandboxed coroutine's private table, and the fresh env of each job on a worker. */
#ifndef SN_LUA_ENV_H
#define SN_LUA_ENV_H

#include <lua.h>

/* sn_env_open: takes the table of metamethods at the top of the stack (popped), which every
 * env metatable carries, and makes L's global table an env and the base env. Call once,
 * after sn_policy_open. Raises only on out of memory. */
void sn_env_open(lua_State *L);

/* sn_env_push_new_mt: pushes a new env metatable: the metamethods, no frozen layers. */
void sn_env_push_new_mt(lua_State *L);

/* sn_env_freeze: the current view of the env at index x becomes the top of its chain of
 * frozen layers (a snapshot others may share); its raw table keeps only the policy names of
 * the base env, which live there. Raises only on out of memory. */
void sn_env_freeze(lua_State *L, int x);

/* sn_env_push_child_mt: pushes the metatable for a new coroutine env of the env at index c,
 * just frozen: the coroutine sees c's snapshot, and c is its creator. Siblings made at the
 * same snapshot share one metatable. */
void sn_env_push_child_mt(lua_State *L, int c);

/* sn_env_push_creator: pushes the creator env of the env at index env (nil when env is not
 * a coroutine's) and returns its Lua type. Never raises. */
int sn_env_push_creator(lua_State *L, int env);

/* sn_env_push_up: sn_env_push_creator, and *user set when the env at env has a script's
 * metatable (one metatable read, for walking up creators). Never raises. */
int sn_env_push_up(lua_State *L, int env, int *user);
/* sn_env_get: for the env's __index: pushes the value of the key at index k, absent from
 * the raw table: its frozen value, nil when deleted since. A found value is copied raw, so
 * the next read of k costs nothing extra. Raises only on out of memory. */
void sn_env_get(lua_State *L, int env, int k);

/* sn_env_set: for the env's __newindex and rawset: raw env[k] = value at index v,
 * remembering k for the next freeze (a nil value records a deletion). Raises only on out of
 * memory. */
void sn_env_set(lua_State *L, int env, int k, int v);

/* sn_env_push_view: pushes a new table holding the whole view of the env at index env: raw
 * values over frozen ones, without deleted names. Raises only on out of memory. */
void sn_env_push_view(lua_State *L, int env);

/* sn_env_push_own_mt: makes the metatable of the env at index env its own (a copy, if
 * siblings shared it) and pushes it. Raises only on out of memory. */
void sn_env_push_own_mt(lua_State *L, int env);

/* sn_env_is_env: 1 if the value at idx is an env (a table with an env metatable), else 0.
 * Never raises. */
int sn_env_is_env(lua_State *L, int idx);

/* sn_env_push_user: pushes the metatable a script set on the env at index env (nil if none)
 * and returns its Lua type. Never raises. */
int sn_env_push_user(lua_State *L, int env);

/* sn_env_set_user: the table (or nil) at umt becomes the script's metatable of the env at
 * env: its metamethods other than __index, __newindex, __pairs, __metatable, __gc and __mode
 * are copied into the env metatable (made the env's own), and the sandbox's __index and
 * __newindex are put back. Pushes the env metatable, for the caller to finish. Raises only
 * on out of memory. */
void sn_env_set_user(lua_State *L, int env, int umt);

/* sn_env_thaw: copies the env's whole view into its raw table (so next and rawget see every
 * name) until the next freeze. Raises only on out of memory. */
void sn_env_thaw(lua_State *L, int env);

/* sn_env_internal_key: 1 if the key at k is one of the sandbox's own raw keys of an env,
 * which next and pairs skip. Never raises. */
int sn_env_internal_key(lua_State *L, int k);

/* sn_env_push_base: pushes the env of code running outside coroutines: the globals, or on a
 * worker the running job's env. */
void sn_env_push_base(lua_State *L);

/* sn_env_seal: on a worker state after preload: the globals as they are become the view
 * every job env starts from. */
void sn_env_seal(lua_State *L);

/* sn_env_job_begin: pushes a fresh job env (reads see the sealed view, writes stay in it,
 * _G is itself) and makes it the base env. Raises only on out of memory. */
void sn_env_job_begin(lua_State *L);

/* sn_env_job_end: the base env is the globals again. */
void sn_env_job_end(lua_State *L);

#endif
