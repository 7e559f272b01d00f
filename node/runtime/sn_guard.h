/* sn_guard: the bound on a shutdown. Armed when the node starts to stop; if the stop has not
 * finished within its timeout (a finalizer looping with hooks off, a task that never
 * returns), it logs and ends the process. */
#ifndef SN_GUARD_H
#define SN_GUARD_H

#include "sn_log.h"

typedef struct sn_guard sn_guard;

/* sn_guard_new: after ms milliseconds, unless destroyed first, logs an error and calls
 * _exit(status) (no more cleanup: what hangs would hang it). NULL when its thread cannot
 * start (then shutdown is unbounded; logged). Any thread. */
sn_guard *sn_guard_new(int ms, int status, sn_log *log);
/* sn_guard_destroy: disarms and frees it; NULL is fine; nulls *gp. */
void sn_guard_destroy(sn_guard **gp);

#endif
