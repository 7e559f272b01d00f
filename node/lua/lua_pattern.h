/* lua_pattern: Lua's pattern matching (string.find, match, gmatch, gsub) under the
 * governor's CPU budget, which Lua's own matcher, running inside C, escapes. */
#ifndef SN_LUA_PATTERN_H
#define SN_LUA_PATTERN_H

#include <lua.h>

/* Matcher steps between two checks of the budget (a clock read each). */
#define SN_PATTERN_STEPS 4096u

/* sn_pattern_open: replaces string.find, match, gmatch and gsub of L with the budgeted
 * matcher (same results and errors as Lua 5.3's). After luaL_openlibs. */
void sn_pattern_open(lua_State *L);

#endif
