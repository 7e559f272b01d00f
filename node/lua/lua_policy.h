/* lua_policy: the _ENV[""] sharing policy of a state: which global names are shared with
 * the creator (plain) or process-wide (starred), as a set and as the list scripts read. */
#ifndef SN_LUA_POLICY_H
#define SN_LUA_POLICY_H

#include <lua.h>
#include <stddef.h>

enum { SN_POLICY_NONE = 0, SN_POLICY_PLAIN = 1, SN_POLICY_STARRED = 2 };

/* sn_policy_open: makes L's policy, empty. Raises only on out of memory. */
void sn_policy_open(lua_State *L);

/* sn_policy_push_set: pushes the set itself, name -> SN_POLICY_PLAIN | SN_POLICY_STARRED
 * (the env metamethods hold it as an upvalue). Callers only read it. */
void sn_policy_push_set(lua_State *L);

/* sn_policy_push_list: pushes a new table, the names as given ("*X" for starred), in the
 * order they were first added. Returns 1. Raises only on out of memory. */
int sn_policy_push_list(lua_State *L);

/* sn_policy_kind: the SN_POLICY_* kind of name in L's policy; SN_POLICY_NONE when absent or
 * when L has no policy. Never raises. */
int sn_policy_kind(lua_State *L, const char *name);

/* sn_policy_kind_at: the same for the value at index k (any type). Never raises. */
int sn_policy_kind_at(lua_State *L, int k);

/* sn_policy_check: raises a Lua error naming the first bad entry unless the value at idx is
 * a list of global names, each optionally starred ("*X"). Changes nothing. */
void sn_policy_check(lua_State *L, int idx);

/* sn_policy_add: adds entry ("X" or "*X", already checked) to the policy. Adding never
 * removes, and "*X" upgrades "X". Returns the name's new kind when this added or upgraded
 * it, SN_POLICY_NONE when it held that kind already. Raises only on out of memory. */
int sn_policy_add(lua_State *L, const char *entry);

/* sn_policy_clear: empties the policy. Never raises. */
void sn_policy_clear(lua_State *L);

/* sn_policy_set_starred: the policy becomes exactly the starred names of names[0..len),
 * each NUL-terminated (what a job carries). Raises only on out of memory. */
void sn_policy_set_starred(lua_State *L, const char *names, size_t len);

/* sn_policy_push_starred: pushes a string of the starred names, each NUL-terminated (the
 * form sn_policy_set_starred reads). Raises only on out of memory. */
void sn_policy_push_starred(lua_State *L);

#endif
