/* lua_builtin: stage.signal's part in the built-in stages (index, route, ticket): a signal
 * to one goes to its home only (node/runtime/sn_builtin.h, docs/stages.md), started on this
 * node first when this node is the home. */
#ifndef LUA_BUILTIN_H
#define LUA_BUILTIN_H

#include "sn_send.h"
#include "sn_target.h"

#include <lua.h>
#include <stddef.h>

/* sn_lua_builtin_route: when t is a send to one or every actor of a built-in stage, points
 * s at its home: scope local when it is this node (started now if need be), else s->node =
 * home (the caller's buffer of cap bytes, which must outlive s). Other targets, a built-in
 * stage whose file is missing, and a failed start leave s as it was (routed as any stage).
 * When no node is known to run it and this node does not know every member's registry yet
 * (joining), it waits, at most --set builtin.settle_ms, then chooses, or points s at no
 * node, so that the send fails with "node down" (logged). Actor threads only. */
void sn_lua_builtin_route(lua_State *L, const sn_target *t, sn_send *s, char *home, size_t cap);

/* sn_lua_builtin_setting: pushes the value of --set KEY=N (a built-in stage's limit, e.g.
 * "index.boards") as an integer, or nil when it was not given. Returns 1. */
int sn_lua_builtin_setting(lua_State *L, const char *key);

/* sn_lua_builtin_open: stage.builtin (an empty table) and stage.actor as stubs that compile
 * preload/stages.lua's definitions at their first use (stage.builtin.NAME, a write, pairs,
 * stage.actor), out of the long comment of the file that armed them with
 * `stage.builtin[stage] = _ENV` (its chunk name and globals). Until armed, stage.builtin
 * reads as empty and stage.actor raises an error naming stages.lua. Runs in state setup. */
void sn_lua_builtin_open(lua_State *L);

#endif
