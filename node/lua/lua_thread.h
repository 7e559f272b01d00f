/* lua_thread: the `thread` table: thread.id, thread.tick, thread.new (with to.waitfor) and
 * thread.signal; and the delivery of a thread's values to its creator's callback. */
#ifndef SN_LUA_THREAD_H
#define SN_LUA_THREAD_H

#include "sn_msg.h"

#include <lua.h>

/* sn_thread_open: sets the global `thread`. Raises only on out of memory. */
void sn_thread_open(lua_State *L);

/* sn_thread_deliver: on the creator actor's state: calls the callback of m's handle with
 * m's values (SN_MSG_THREAD), or the last values then removes it (SN_MSG_THREAD_END).
 * Errors are logged. */
void sn_thread_deliver(lua_State *L, const sn_msg *m);

/* sn_lua_thread_submit: the common part of stage.submit and thread.new: the values at stack
 * indices fn..top travel as a snapshot (arg_base numbers fn in error paths). Returns the
 * new job's handle (0 for plain jobs). Raises a Lua error when a value cannot travel. */
lua_Integer sn_lua_thread_submit(lua_State *L, lua_Integer key, int fn, int arg_base,
                                 int want_handle);

#endif
