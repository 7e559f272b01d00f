/* lua_worker: a worker thread's own lua_State, reused across jobs, and the running of one
 * job (stage.submit, thread.new) in a fresh environment on it. */
#ifndef SN_LUA_WORKER_H
#define SN_LUA_WORKER_H

#include "sn_log.h"
#include "sn_sched.h"
#include "sn_vm.h"

typedef struct sn_lua_worker sn_lua_worker;

/* sn_lua_worker_init: sn_vm_ops.worker_init (ud: the sn_lua_ctx): the worker's state,
 * preloaded; on the worker thread. NULL on out of memory (logged); a worker whose state
 * failed fails each job it is given, with a log record. */
void *sn_lua_worker_init(void *ud, const sn_vm_worker *conf);
/* sn_lua_worker_fini: sn_vm_ops.worker_fini: closes the state and frees the worker. */
void sn_lua_worker_fini(void *ud, void *worker);

/* sn_lua_worker_busy / sn_lua_worker_idle: what the worker runs now, for the watchdog: who (an
 * actor's name) and what (a handler id, or NULL). w may be NULL. The worker's thread. */
void sn_lua_worker_busy(sn_lua_worker *w, const char *who, const char *what);
void sn_lua_worker_idle(sn_lua_worker *w);
/* sn_lua_worker_busy_for: sn_vm_ops.worker_busy_for: seconds the worker has been on its
 * current entry (0 when idle), with copies of who and what. Any thread. */
double sn_lua_worker_busy_for(void *ud, void *worker, char *who, size_t wholen, char *what,
                              size_t whatlen);

/* sn_lua_worker_run_job: the job task: runs the job's function with its arguments on the
 * worker's state, then reports the end to the node (re-run, or done). Worker threads only. */
void sn_lua_worker_run_job(sn_task *t, void *worker);

#endif
