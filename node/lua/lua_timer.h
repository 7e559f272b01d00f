/* lua_timer: stage.addtask: timers that run a function in the calling actor. */
#ifndef SN_LUA_TIMER_H
#define SN_LUA_TIMER_H

#include <lua.h>
#include <stdint.h>

/* sn_lua_timer_open: prepares the task table of L. */
void sn_lua_timer_open(lua_State *L);
/* stage.addtask(ms, fn, ...), stage.addtask(fn, ...), stage.addtask(task, nil | ms [, fn] |
 * fn): the Lua function (docs/lua-api.md). */
int sn_lua_timer_lua(lua_State *L);
/* sn_lua_timer_idle: arms the function at index fn to run now, as the IDLE function a main
 * script returns (STAGE): re-run after the ms it returns. 1 when armed, 0 when L is no
 * actor's. Raises only on out-of-memory. */
int sn_lua_timer_idle(lua_State *L, int fn);
/* sn_lua_timer_fire: on the actor's state: task's time came: run it, re-arm it when it returns a
 * positive number of ms, else forget it. Errors are logged and the task is not re-armed. */
void sn_lua_timer_fire(lua_State *L, uint64_t task);
struct sn_msg;
/* sn_lua_timer_message: on the actor's state: an SN_MSG_TIMER message: a timer that fired
 * (no payload), or one a job of this actor armed ((ms, fn, args...) in the payload): armed
 * here, under the handle the job returned. */
void sn_lua_timer_message(lua_State *L, const struct sn_msg *m);

#endif
