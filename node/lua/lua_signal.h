/* lua_signal: stage.signal: every target form inside a node, replies, and ordered locks. */
#ifndef SN_LUA_SIGNAL_H
#define SN_LUA_SIGNAL_H

#include "sn_msg.h"

#include <lua.h>

/* stage.signal(target, ...): the Lua function. */
int sn_signal_lua(lua_State *L);

/* sn_signal_reply: sends the n values at first.. as the reply to m (which asked for one). */
void sn_signal_reply(lua_State *L, const sn_msg *m, int first, int n);
/* sn_signal_answer: sends the n values at first.. back to m's sender (an actor of this
 * node), as message m->name marked as an answer (STAGE's automatic answer). Failures are
 * logged. */
void sn_signal_answer(lua_State *L, const sn_msg *m, int first, int n);
/* sn_signal_reply_error: replies nil, text to m (which asked for one). */
void sn_signal_reply_error(lua_State *L, const sn_msg *m, const char *text);

#endif
