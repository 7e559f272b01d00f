/* lua_restore: a worker state's standard library as it was after its preload, put back
 * after each job, so that no job sees what an earlier job (of any actor) did to it. */
#ifndef SN_LUA_RESTORE_H
#define SN_LUA_RESTORE_H

#include <lua.h>

/* sn_restore_save: records the fields and metatables of the library tables (string,
 * table, math, os, io, coroutine, utf8, debug, package, package.loaded, stage, thread,
 * process), of the string metatable and of the metatable job envs share. Once, after the
 * preload and the seal. LUA_OK, or an error status with the message on the stack. */
int sn_restore_save(lua_State *L);

/* sn_restore_apply: puts every recorded table back as saved: changed and added fields,
 * removed ones, and the metatables. After each job, in protection (it may allocate when a
 * removed field comes back). Nothing when sn_restore_save never ran. LUA_OK, or an error
 * status with the message on the stack. */
int sn_restore_apply(lua_State *L);

#endif
