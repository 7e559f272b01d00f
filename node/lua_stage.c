/* lua_stage: the `stage` table. Functions whose machinery is not built yet raise an error
 * saying so, rather than being absent (a nil call would tell the user less). */
#include "lua_stage.h"

#include <lauxlib.h>

static int unavailable(lua_State *L)
{
    return luaL_error(L, "%s is not available yet in this build of stage-node",
                      lua_tostring(L, lua_upvalueindex(1)));
}

void sn_stage_open(lua_State *L)
{
    static const char *const later[] = {"submit", "waitfor", "signal", "addtask", "once",
                                        "load",   "require", "call",   "spawn",   NULL};
    lua_createtable(L, 0, 16);
    for (int i = 0; later[i]; i++) {
        lua_pushfstring(L, "stage.%s", later[i]);
        lua_pushcclosure(L, unavailable, 1);
        lua_setfield(L, -2, later[i]);
    }
    lua_setglobal(L, "stage");
}
