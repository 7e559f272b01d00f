/* lua_broker: the `broker` table and socket objects of STAGE (docs/broker.md), over the
 * broker of node/broker. A socket's callbacks live in the state of the actor that owns it;
 * its events arrive there as SN_MSG_BROKER messages. */
#ifndef LUA_BROKER_H
#define LUA_BROKER_H

#include "sn_msg.h"

#include <lua.h>

/* sn_lua_broker_open: sets the global `broker` in L. */
void sn_lua_broker_open(lua_State *L);
/* sn_lua_broker_deliver: one broker event for the actor running on L (its callbacks run
 * under sn_lua_pcall). */
void sn_lua_broker_deliver(lua_State *L, const sn_msg *m);
/* sn_lua_broker_hold: on: what the actor running on L does to this node's sockets is held in
 * its state's batch, for one command to the loop thread (an actor's turn: the answers to
 * many messages, one wake of the loop). off: the batch goes to the loop now.
 * sn_lua_broker_send: the batch goes to the loop now; holding goes on.
 * sn_lua_broker_held: operations in the batch. */
void sn_lua_broker_hold(lua_State *L, int on);
void sn_lua_broker_send(lua_State *L);
size_t sn_lua_broker_held(lua_State *L);

#endif
