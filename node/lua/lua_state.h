/* lua_state: makes the lua_State of an actor or a worker: standard libraries, print, the
 * process/thread/stage tables, the sandbox and the governor. Preload runs after. */
#ifndef SN_LUA_STATE_H
#define SN_LUA_STATE_H

#include "lua_host.h"

#include <lua.h>

/* sn_lua_new: a new state owned by host, with everything but preload installed.
 * Returns NULL on out of memory (logged). Caller owns the state (lua_close). */
lua_State *sn_lua_new(sn_lua_host *host);

#endif
