/* lua_rank: the ranking board (sn_rank) as a Lua value, for the built-in index stage
 * (preload/stages.lua) and for any script: stage.rank(max_keys) makes one board. */
#ifndef LUA_RANK_H
#define LUA_RANK_H

#include <lua.h>

/* sn_lua_rank_open: sets stage.rank in the state (after the stage table exists). */
void sn_lua_rank_open(lua_State *L);

#endif
