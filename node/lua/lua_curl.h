/* lua_curl: STAGE's curl stage for scripts: stage.signal("curl:ID", request) becomes an HTTP
 * request on the node's libcurl driver (node/io/sn_curl), and its response comes back to the
 * sender's handler ID as a message; require("curl") is STAGE's request builder (CURL.New). */
#ifndef LUA_CURL_H
#define LUA_CURL_H

#include "sn_target.h"

#include <lua.h>

/* sn_lua_curl_open: makes require("curl") return the request builder. */
void sn_lua_curl_open(lua_State *L);

/* sn_lua_curl_signal: when t is for the curl stage (stage id "curl" and no actor of that
 * stage on this node), starts the request in the values at 2.. and returns the number of
 * results stage.signal returns (1, or 0 and why); raises on a bad request, naming the
 * field. Returns -1 when t is not for the curl stage. Actor threads only. */
int sn_lua_curl_signal(lua_State *L, const sn_target *t);

#endif
