/* lua_stage: the `stage` table scripts see (lua-api.md sections 2, 3, 5). */
#ifndef SN_LUA_STAGE_H
#define SN_LUA_STAGE_H

#include <lua.h>

/* sn_stage_open: sets the global `stage`. Raises only on out of memory. */
void sn_stage_open(lua_State *L);

#endif
