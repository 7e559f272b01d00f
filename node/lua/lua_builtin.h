/* lua_builtin: STAGE's built-in stages (index, route, ticket) are Lua actors written on the
 * public API (preload/stages.lua defines stage.builtin[name]); the first signal to one that
 * no node runs starts it on the sender's node, as stage.spawn(name, stage.builtin[name])
 * would. */
#ifndef LUA_BUILTIN_H
#define LUA_BUILTIN_H

#include <lua.h>

/* sn_builtin_ensure: when stage is a built-in stage that no actor of this node nor any
 * known node runs, spawns it on this node from stage.builtin[stage] of L. Returns 1 when it
 * spawned one, 0 when nothing was needed or stage.builtin lacks it (then the signal finds
 * no route, as for any stage), -1 when the spawn failed (logged). Actor threads only. */
int sn_builtin_ensure(lua_State *L, const char *stage);

#endif
