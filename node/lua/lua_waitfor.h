/* lua_waitfor: an actor's message handlers: stage.waitfor in all its forms, hierarchical
 * matching, and running a handler for a message with _WAITFOR describing it. */
#ifndef SN_LUA_WAITFOR_H
#define SN_LUA_WAITFOR_H

#include "sn_msg.h"

#include <lua.h>

/* sn_waitfor_open: prepares the handler table of L. Raises only on out of memory. */
void sn_waitfor_open(lua_State *L);

/* stage.waitfor(id, fn, ...) / (fn, ...) / (n, fn, ...) / (id, nil) / (id) /
 * (id, extra...) / (): the Lua function (docs/lua-api.md, stage.waitfor). */
int sn_waitfor_lua(lua_State *L);

/* sn_waitfor_dispatch: runs the handler matching m (SN_MSG_SIGNAL; the most specific id,
 * then "@") with m's values, _WAITFOR set meanwhile. Unless the handler answered with
 * stage.signal(nil, ...), its return values, if any, are the reply when m asks for one,
 * else an automatic answer to m's sender (not for an answer); a failure replies nil and
 * the error. Errors are logged. */
void sn_waitfor_dispatch(lua_State *L, const sn_msg *m);

/* sn_waitfor_adopt: registers the handler carried by m (SN_MSG_HANDLER, from a job). */
void sn_waitfor_adopt(lua_State *L, const sn_msg *m);

/* sn_waitfor_push_address: pushes an actor's address as scripts see it,
 * {node=, actor=, stage=}, with id= when id is not NULL. Raises only on out of memory. */
void sn_waitfor_push_address(lua_State *L, const char *node, uint64_t actor, const char *stage,
                             const char *id);

/* sn_waitfor_call: the synchronous ":msg": runs the handler for msg of L's own actor with
 * the n values at first..top, inside the caller; leaves the handler's results on the stack
 * and returns their number. Raises when no handler matches or the handler fails. */
int sn_waitfor_call(lua_State *L, const char *msg, int first);

#endif
