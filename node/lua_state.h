/* lua_state: makes the lua_State of an actor (or, later, a worker): standard libraries,
 * print, the process/thread/stage tables, the sandbox, preload; and runs Lua code safely. */
#ifndef SN_LUA_STATE_H
#define SN_LUA_STATE_H

#include "sn_log.h"

#include <lua.h>

/* What a state belongs to; reachable from any binding through the state's extra space.
 * The owner keeps it alive as long as the state. */
typedef struct sn_lua_host {
    sn_log *log;
    const char *who;          /* for log records: the actor's name */
    const char *node_name;    /* process.name */
    double start;             /* monotonic seconds at node start (process.tick) */
    char *const *args;        /* process.args */
    int nargs;
    const char *script;       /* process.args[0] */
} sn_lua_host;

/* sn_lua_new: a new state owned by host, with everything but preload installed.
 * Returns NULL on out of memory (logged). Caller owns the state (lua_close). */
lua_State *sn_lua_new(sn_lua_host *host);

/* sn_lua_host_of: the host given to sn_lua_new. */
sn_lua_host *sn_lua_host_of(lua_State *L);

/* sn_lua_pcall: lua_pcall with a traceback handler. On error logs one record
 * "what: message\ntraceback" at level error, pops it, and returns SN_ELUA. */
int sn_lua_pcall(lua_State *L, int nargs, int nresults, const char *what);

/* sn_lua_run_file: loads and runs a Lua file as a chunk. SN_ENOENT when it cannot be read,
 * SN_ELUA on a syntax or runtime error; each is logged with file:line. */
int sn_lua_run_file(lua_State *L, const char *path);

/* sn_lua_run_preload: runs every *.lua file of dir in name order. A missing dir is no error
 * when it is the default one (must_exist = 0). Stops at the first failing file. */
int sn_lua_run_preload(lua_State *L, const char *dir, int must_exist);

#endif
