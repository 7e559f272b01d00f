/* lua_broker_addr: the broker table's address helpers (docs/broker.md), plain functions of
 * their arguments; any state. */
#ifndef LUA_BROKER_ADDR_H
#define LUA_BROKER_ADDR_H

#include <lua.h>

/* sn_lua_broker_ntoa: broker.ntoa(addr [, t]): "host:port", or t filled (family, addr, port,
 * scope_id); nothing for what is not an IPv4 or IPv6 address. */
int sn_lua_broker_ntoa(lua_State *L);
/* sn_lua_broker_aton: broker.aton("host:port" | "udp://host:port" | family [, t]): an address
 * (with t: every address the name resolves to, or t's fields applied); nothing when the name
 * does not resolve. */
int sn_lua_broker_aton(lua_State *L);
/* sn_lua_broker_ifaddr: broker.ifaddr([name]): {device = {addr, ...}} of the interfaces up. */
int sn_lua_broker_ifaddr(lua_State *L);

#endif
