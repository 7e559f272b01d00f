/* sn_timers: timers asked for by any thread and armed by the loop thread: an actor's
 * stage.addtask task coming due, or a job's re-run. */
#ifndef SN_TIMERS_H
#define SN_TIMERS_H

#include "sn_jobs.h"
#include "sn_loop.h"

#include <stdint.h>

typedef struct sn_timers sn_timers;

typedef struct sn_timers_hooks {
    /* actor_due: loop thread: the timer task of actor fired. */
    void (*actor_due)(void *ud, uint64_t task, uint64_t actor);
    /* job_due: loop thread: job's re-run is due (consumes job). */
    void (*job_due)(void *ud, sn_job *job);
    void *ud;
} sn_timers_hooks;

/* sn_timers_new: timers on loop, firing through hooks (copied). NULL on out of memory. */
sn_timers *sn_timers_new(sn_loop *loop, const sn_timers_hooks *hooks);
/* sn_timers_destroy: frees every armed timer (and the jobs waiting a re-run); NULL is fine;
 * nulls *tp. Main thread, after the loop stopped and before it is destroyed. */
void sn_timers_destroy(sn_timers **tp);

/* sn_timers_arm: after ms, hooks->actor_due(task, actor). One unit of pending work until the
 * loop armed it. Any thread. SN_OK or SN_ENOMEM (logged by the caller). */
int sn_timers_arm(sn_timers *t, uint64_t task, uint64_t actor, double ms);
/* sn_timers_cancel: the timer task will not fire (nothing when it already did). Any thread. */
void sn_timers_cancel(sn_timers *t, uint64_t task);
/* sn_timers_rerun: after ms, hooks->job_due(job). SN_OK: job consumed, and the caller's unit
 * of pending work passes to the timer; SN_ENOMEM: the caller keeps both. Any thread. */
int sn_timers_rerun(sn_timers *t, sn_job *job, double ms);

#endif
