/* lua_odbc: STAGE's odbc library for scripts (odbc.new, odbc.cache, odbc.purge; adapter and
 * resultset) on the node's ODBC pools (node/io/sn_odbc): a statement is a job on a pool's
 * thread, its result a message to the actor, and the script's function waits as a coroutine. */
#ifndef LUA_ODBC_H
#define LUA_ODBC_H

#include <lua.h>

/* sn_lua_odbc_open: sets the global odbc. Raises only on out of memory. */
void sn_lua_odbc_open(lua_State *L);

#endif
