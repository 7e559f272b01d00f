/* sn_sched: the worker pool. N OS threads take runnable tasks (an actor with mail, a job)
 * from one FIFO run queue and run each to the end of its turn. Idle workers sleep (no
 * spinning); a task a worker queues for itself waits in its slot, without a wake-up. */
#ifndef SN_SCHED_H
#define SN_SCHED_H

typedef struct sn_sched sn_sched;
typedef struct sn_task sn_task;

/* A runnable, embedded in what runs (actor, job). run is called on a worker thread with that
 * worker's own data; the task is off the queue then, and may push itself again. */
struct sn_task {
    sn_task *next; /* owned by the run queue */
    void (*run)(sn_task *t, void *worker);
};

typedef struct sn_sched_hooks {
    /* worker_init: on the worker thread before its first task; returns the worker data. */
    void *(*worker_init)(void *ud, int index);
    /* worker_fini: on the worker thread after its last task. */
    void (*worker_fini)(void *ud, void *worker);
    /* discard: at destroy, for each task still queued (never run); may be NULL. */
    void (*discard)(void *ud, sn_task *t);
    void *ud;
} sn_sched_hooks;

/* sn_sched_new: starts nworkers threads (1..1024). NULL with *err set (SN_ENOMEM, SN_EIO). */
sn_sched *sn_sched_new(int nworkers, const sn_sched_hooks *hooks, int *err);
/* sn_sched_destroy: lets running tasks finish, stops and joins every worker, hands each task
 * still queued to hooks->discard, and frees the pool. NULL is fine; nulls *sp. */
void sn_sched_destroy(sn_sched **sp);

/* sn_sched_push: queues t at the tail and wakes one sleeping worker. From a worker of s
 * (inside a task), t goes to that worker's slot instead (what the slot held goes to the
 * queue): it runs when the current task ends, or on an idle worker once it has waited a
 * few milliseconds (a busy worker), or a few watcher periods, 20 ms at most (a worker
 * preempted or blocked). Any thread. */
void sn_sched_push(sn_sched *s, sn_task *t);
/* sn_sched_workers: the number of worker threads. */
int sn_sched_workers(const sn_sched *s);

#endif
