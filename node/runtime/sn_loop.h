/* sn_loop: the node's loop thread: a libev loop for timers and I/O, a FIFO of commands other
 * threads queue for it, the count of pending work that keeps it alive, and the signals that
 * stop a serving node. */
#ifndef SN_LOOP_H
#define SN_LOOP_H

#include "sn_log.h"

struct ev_loop;
typedef struct sn_loop sn_loop;

/* A command for the loop thread, embedded in what it carries. run is called on the loop
 * thread and owns c from then on; drop (at destroy, never run) frees it. */
typedef struct sn_loop_cmd sn_loop_cmd;
struct sn_loop_cmd {
    sn_loop_cmd *next; /* owned by the inbox */
    void (*run)(sn_loop_cmd *c);
    void (*drop)(sn_loop_cmd *c);
};

typedef struct sn_loop_hooks {
    /* woken: loop thread, after each wake-up's commands (the node flushes remote frames). */
    void (*woken)(void *ud);
    /* signal: loop thread, SIGINT or SIGTERM while serving, before the loop stops. */
    void (*signal)(void *ud, int signum);
    void *ud;
} sn_loop_hooks;

/* sn_loop_new: a loop logging to log; NULL on out of memory (the caller logs). */
sn_loop *sn_loop_new(sn_log *log);
/* sn_loop_destroy: drops queued commands and frees the loop; NULL is fine; nulls *lp. Main
 * thread, after everything that queues commands has stopped. */
void sn_loop_destroy(sn_loop **lp);
/* sn_loop_set_hooks: replaces the hooks (copied). Main thread, before sn_loop_run. */
void sn_loop_set_hooks(sn_loop *l, const sn_loop_hooks *h);

/* sn_loop_ev: the libev loop, for watchers that run on the loop thread. */
struct ev_loop *sn_loop_ev(sn_loop *l);

/* sn_loop_send: queues c for the loop thread (consumed). Any thread. */
void sn_loop_send(sn_loop *l, sn_loop_cmd *c);
/* sn_loop_work: pending work changes by delta (a queued message, a job, a timer not yet
 * armed); the loop ends only when it is zero and no watcher is active. Any thread. */
void sn_loop_work(sn_loop *l, long delta);
/* sn_loop_hold: loop thread: every loop callback that changes pending work calls it before
 * returning, or the loop could end in between. */
void sn_loop_hold(sn_loop *l);
/* sn_loop_wake: makes the loop thread run its commands and the woken hook. Any thread. */
void sn_loop_wake(sn_loop *l);

/* sn_loop_serve: keeps the loop alive until SIGINT or SIGTERM (a node with listeners). */
void sn_loop_serve(sn_loop *l);
/* sn_loop_catch_signals: SIGINT and SIGTERM stop the loop in order (as when serving) without
 * keeping it alive (a standalone script whose broker sockets hold the loop). Loop thread, or
 * before sn_loop_run. */
void sn_loop_catch_signals(sn_loop *l);
/* sn_loop_run: runs the loop until nothing can happen any more, or sn_loop_stop. Main
 * thread. */
void sn_loop_run(sn_loop *l);
/* sn_loop_stop: makes sn_loop_run return soon. Any thread. */
void sn_loop_stop(sn_loop *l);
/* sn_loop_stopping: 1 after sn_loop_stop or a signal. Any thread. */
int sn_loop_stopping(sn_loop *l);

#endif
