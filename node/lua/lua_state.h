/* lua_state: makes the lua_State of an actor or a worker: standard libraries, print, the
 * process/thread/stage tables, the sandbox and the governor. Preload runs after. */
#ifndef SN_LUA_STATE_H
#define SN_LUA_STATE_H

#include "lua_host.h"

#include <lua.h>

/* sn_lua_new: a new state owned by host, with everything but preload installed.
 * Returns NULL on out of memory (logged). Caller owns the state (lua_close). */
lua_State *sn_lua_new(sn_lua_host *host);

/* sn_lua_lazy_open: opens the library `name` (or, with NULL, each) that a state of
 * sn_lua_new opens at its first use (broker, logger, bundle), if it is not open yet: for C
 * code that needs the library's state without a script having touched it (a broker event,
 * a worker saving its library). Raises on out of memory: call it under a protected call. */
void sn_lua_lazy_open(lua_State *L, const char *name);

#endif
