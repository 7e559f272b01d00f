/* lua_worker: a worker thread's own lua_State, reused across jobs, and the running of one
 * job (stage.submit, thread.new) in a fresh environment on it. */
#ifndef SN_LUA_WORKER_H
#define SN_LUA_WORKER_H

#include "sn_log.h"
#include "sn_sched.h"

struct sn_node;
typedef struct sn_worker sn_worker;

typedef struct sn_worker_conf {
    struct sn_node *node;
    int index;
    const char *node_name;
    const char *preload;
    int preload_required;
    double start;
    sn_log *log;
} sn_worker_conf;

/* sn_worker_new: the worker's state, preloaded; on the worker thread. NULL on failure
 * (logged): the worker then fails each job it is given, with a log record. */
sn_worker *sn_worker_new(const sn_worker_conf *conf);
/* sn_worker_destroy: closes the state; NULL is fine; nulls *wp. */
void sn_worker_destroy(sn_worker **wp);

/* sn_worker_busy / sn_worker_idle: what the worker runs now, for the watchdog: who (an
 * actor's name) and what (a handler id, or NULL). w may be NULL. The worker's thread. */
void sn_worker_busy(sn_worker *w, const char *who, const char *what);
void sn_worker_idle(sn_worker *w);
/* sn_worker_busy_for: seconds the worker has been on its current entry (0 when idle),
 * with copies of who and what. Any thread. */
double sn_worker_busy_for(sn_worker *w, char *who, size_t wholen, char *what, size_t whatlen);

/* sn_worker_run_job: the job task: runs the job's function with its arguments on the
 * worker's state, then reports the end to the node (re-run, or done). Worker threads only. */
void sn_worker_run_job(sn_task *t, void *worker);

#endif
