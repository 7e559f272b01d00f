/* lua_load: stage.load, stage.require and stage.call: code loaded from the package path,
 * cached per state, and reloaded when its file changes. */
#ifndef SN_LUA_LOAD_H
#define SN_LUA_LOAD_H

#include <lua.h>

/* sn_load_open: prepares the cache of L. */
void sn_load_open(lua_State *L);
/* stage.load("file+name", cb), stage.require(...), stage.call(f, args, ...). */
int sn_load_lua(lua_State *L);
int sn_require_lua(lua_State *L);
int sn_call_lua(lua_State *L);

#endif
