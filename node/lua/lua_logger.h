/* lua_logger: the `logger` table of STAGE (logger.out/info/warn/error/trace), written as
 * records of the node's log (text or JSON lines, docs/node.md). */
#ifndef SN_LUA_LOGGER_H
#define SN_LUA_LOGGER_H

#include <lua.h>

/* sn_logger_open: sets the global `logger`. Raises only on out of memory. */
void sn_logger_open(lua_State *L);

#endif
