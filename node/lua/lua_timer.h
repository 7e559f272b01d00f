/* lua_timer: stage.addtask: timers that run a function in the calling actor. */
#ifndef SN_LUA_TIMER_H
#define SN_LUA_TIMER_H

#include <lua.h>
#include <stdint.h>

/* sn_lua_timer_open: prepares the task table of L. */
void sn_lua_timer_open(lua_State *L);
/* stage.addtask(ms, fn, ...) / stage.addtask(task, nil): the Lua function. */
int sn_lua_timer_lua(lua_State *L);
/* sn_lua_timer_fire: on the actor's state: task's time came: run it, re-arm it when it returns a
 * positive number of ms, else forget it. Errors are logged and the task is not re-armed. */
void sn_lua_timer_fire(lua_State *L, uint64_t task);

#endif
