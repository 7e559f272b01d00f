/* lua_broker_addr: the broker table's address helpers (docs/broker.md), plain functions of
 * their arguments, any state; and where a socket id lives (its node). */
#ifndef LUA_BROKER_ADDR_H
#define LUA_BROKER_ADDR_H

#include "sn_broker.h"

#include <lua.h>
#include <stddef.h>

/* sn_lua_broker_ntoa: broker.ntoa(addr [, t]): "host:port", or t filled (family, addr, port,
 * scope_id); nothing for what is not an IPv4 or IPv6 address. */
int sn_lua_broker_ntoa(lua_State *L);
/* sn_lua_broker_aton: broker.aton("host:port" | "udp://host:port" | family [, t]): an address
 * (with t: every address the name resolves to, or t's fields applied); nothing when the name
 * does not resolve. */
int sn_lua_broker_aton(lua_State *L);
/* sn_lua_broker_ifaddr: broker.ifaddr([name]): {device = {addr, ...}} of the interfaces up. */
int sn_lua_broker_ifaddr(lua_State *L);
/* sn_lua_broker_owner: the node whose broker gave id (b: this node's, or NULL): 1 with its name
 * in out, 0 for this node, -1 unknown. The name is cached per state, in its registry (fresh:
 * skip the cache, after a send found it gone). */
int sn_lua_broker_owner(lua_State *L, sn_broker *b, lua_Integer id, int fresh, char *out,
                        size_t cap);

#endif
