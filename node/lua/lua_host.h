/* lua_host: the host record every stage-node lua_State carries (what it belongs to, its
 * governor), and the one way to call Lua and run files. The bindings include this. */
#ifndef SN_LUA_HOST_H
#define SN_LUA_HOST_H

#include "sn_log.h"

#include <lua.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

struct sn_node;
struct sn_job;
struct sn_shared;
struct sn_cluster;
struct sn_fcache;
struct sn_curl;
struct sn_broker;
struct sn_odbc;

/* sn_lua_ctx: what the bindings reach beyond the runtime, set up by main: the cluster and
 * the function cache (each NULL on a standalone node / before main attaches it). Outlives
 * every state. */
typedef struct sn_lua_ctx {
    struct sn_cluster *cluster;
    struct sn_fcache *fcache;
    struct sn_curl *curl; /* the curl stage's driver (lua_curl.h); NULL: none */
    struct sn_broker *broker; /* the broker (lua_broker); NULL: none */
    struct sn_odbc *odbc;     /* the odbc library's pools (lua_odbc.h); NULL: none */
    struct sn_lua_chunks *chunks; /* compiled preload and script files (lua_chunks.h); NULL:
                                     every state compiles them */
} sn_lua_ctx;

/* What a state belongs to; reachable from any binding through the state's extra space.
 * The owner keeps it alive as long as the state. */
typedef struct sn_lua_host {
    sn_log *log;
    const char *who;          /* for log records: the actor's name */
    const char *stage;        /* the actor's stage id ("" on a worker between jobs) */
    const char *node_name;    /* process.name */
    double start;             /* monotonic seconds at node start (process.tick) */
    char *const *args;        /* process.args */
    int nargs;
    const char *script;       /* process.args[0] */
    struct sn_node *node;     /* the node, for bindings that queue work or messages */
    struct sn_shared *shared; /* the starred store; NULL: starred names act as plain ones */
    const sn_lua_ctx *ctx;    /* the cluster and the function cache; NULL: none */
    uint64_t actor;           /* the owning actor; on a worker: the running job's owner */
    const struct sn_stats_stage *counts; /* the actor's series (sn_stats.h); NULL: none */
    struct sn_job *job;       /* on a worker: the job running now, else NULL */
    const void *msg;          /* the message being handled (an sn_msg), or NULL */
    int replied;              /* stage.signal(nil, ...) answered the message being handled */
    unsigned functions;       /* Lua functions in the values stage.signal is sending */
    /* lua_broker: the state's batch of socket operations (once `broker` is open, else
     * NULL); broker_hold: the actor's turn holds them there (sn_lua_broker_hold);
     * broker_send: sends what is held (the budget hook calls it, so that a long handler
     * does not hold the answers to the messages before it) */
    void *broker_batch;
    int broker_hold;
    void (*broker_send)(lua_State *L);

    /* the governor (see docs/governor.md) */
    double budget;            /* CPU seconds per entry into Lua; 0: no limit */
    size_t mem_warn, mem_cap; /* bytes; 0: none */
    _Atomic size_t *mem_used; /* bytes the state holds (the counting allocator); only the
                                 state's thread writes it, any thread may read it; it lives
                                 in the owner (the actor), so it outlives a restart; NULL:
                                 sn_lua_new points it at mem_own */
    _Atomic size_t mem_own;
    int mem_warned;           /* the warning was logged; again after it falls below half */
    double entry_cpu;         /* thread CPU seconds when the current entry began */
    char activity[160];       /* what the current entry runs, e.g. "handler 'hello'" */
    int over_budget;          /* the current entry overran its budget: every hook raises */
    int last_kill;            /* after an entry failed: 1 budget, 2 memory, else 0 */
    double drop_logged_at;    /* when a dropped message was last logged (rate limit) */
    unsigned drops_unlogged;  /* dropped messages not logged since then */
} sn_lua_host;


/* sn_lua_host_of: the host given to sn_lua_new. */
sn_lua_host *sn_lua_host_of(lua_State *L);

/* sn_lua_pcall: one entry into Lua: lua_pcall with a traceback handler, under the
 * governor: the CPU budget starts now for `activity` (e.g. "handler 'hello'"). On error
 * logs one record "error in ACTIVITY: message\ntraceback", pops it, sets host->last_kill
 * (budget or memory) and returns SN_ELUA. */
int sn_lua_pcall(lua_State *L, int nargs, int nresults, const char *activity);
/* sn_lua_pack_handler: pushes {fn, extra..., n = #extra} of the function at index fn and the
 * values after it up to index top: a handler kept with its extra values (stage.waitfor,
 * thread_object.waitfor). Raises only on out of memory. */
void sn_lua_pack_handler(lua_State *L, int fn, int top);

/* sn_lua_clear_table: removes every key of the table at idx, keeping the table itself (for
 * tables that metamethods hold as upvalues). */
void sn_lua_clear_table(lua_State *L, int idx);

/* sn_lua_run_file: loads and runs a Lua file as a chunk (a main script: what it returns,
 * when not nil, is passed to the main hook, in protection). SN_ENOENT when it cannot be
 * read, SN_ELUA on a syntax or runtime error (of the chunk or the hook); each is logged
 * with file:line. Preload files run as chunks whose results are dropped. */
int sn_lua_run_file(lua_State *L, const char *path);

/* sn_lua_set_main_hook: hook(value) runs on what a main script returned (lua_stage's: an
 * IDLE function or a table of handlers, as STAGE's boot). */
void sn_lua_set_main_hook(lua_State *L, lua_CFunction hook);

/* sn_lua_run_preload: runs every *.lua file of dir and of its folders, recursively, in name
 * order. A missing dir is no error when it is the default one (must_exist = 0). Stops at
 * the first failing file. */
int sn_lua_run_preload(lua_State *L, const char *dir, int must_exist);

/* sn_lua_budget_check: for C code that runs long inside one entry (the pattern matcher):
 * raises the budget error once the entry has used its CPU budget, else returns. */
void sn_lua_budget_check(lua_State *L);

/* sn_lua_govern: installs the budget hook (every 100,000 instructions) on L. */
void sn_lua_govern(lua_State *L);

/* sn_lua_rawnext(t, k): next(t, k) without metamethods, for a __pairs that must not reach
 * the global next (a script may have replaced it). */
int sn_lua_rawnext(lua_State *L);

#endif
