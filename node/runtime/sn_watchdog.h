/* sn_watchdog: a thread that says which actor is stuck, in which handler, for how long. The
 * budget hook stops Lua code, but a C function (string.rep of a huge size, a blocking call)
 * cannot be interrupted; this at least names it (Skynet's monitor). */
#ifndef SN_WATCHDOG_H
#define SN_WATCHDOG_H

#include "sn_log.h"
#include "sn_vm.h"

typedef struct sn_watchdog sn_watchdog;

/* sn_watchdog_new: watches nworkers workers through vm->worker_busy_for, warning once per
 * threshold seconds busy (threshold <= 0: 5 s). Starts its thread (when it cannot, there is
 * no watchdog: logged). NULL on out of memory. */
sn_watchdog *sn_watchdog_new(int nworkers, double threshold, const sn_vm_ops *vm, sn_log *log);
/* sn_watchdog_worker: worker index started with data worker. Any thread. */
void sn_watchdog_worker(sn_watchdog *wd, int index, void *worker);
/* sn_watchdog_stop: stops and joins the thread; idempotent. Before the workers' data goes. */
void sn_watchdog_stop(sn_watchdog *wd);
/* sn_watchdog_destroy: stops it and frees it; NULL is fine; nulls *wp. */
void sn_watchdog_destroy(sn_watchdog **wp);

#endif
