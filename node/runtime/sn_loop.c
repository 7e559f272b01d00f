/* sn_loop: "pending work" counts queued messages, jobs queued or running, and timer requests
 * not yet armed; the loop holds a libev reference while it is not zero, so ev_run returns
 * exactly when nothing can happen any more (armed timers keep it alive by themselves). */
#include "sn_loop.h"

#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

struct sn_loop {
    struct ev_loop *ev;
    sn_log *log;
    sn_loop_hooks hooks;
    atomic_long work;
    atomic_int stopping;
    int holding; /* loop thread: a libev reference is held for pending work */
    ev_async wake;
    ev_signal sigint, sigterm;
    int signals; /* 0 none, 1 caught (not holding the loop), 2 serving (holding it) */
    atomic_int serving; /* signals == 2, for other threads */
    pthread_mutex_t inbox_lock; /* commands for the loop thread, FIFO */
    sn_loop_cmd *inbox, *inbox_tail;
};

void sn_loop_hold(sn_loop *l)
{
    int busy = atomic_load(&l->work) > 0;
    if (busy && !l->holding) {
        ev_ref(l->ev);
        l->holding = 1;
    } else if (!busy && l->holding) {
        ev_unref(l->ev);
        l->holding = 0;
    }
}

static void on_wake(struct ev_loop *ev, ev_async *w, int revents)
{
    (void)revents;
    sn_loop *l = w->data;
    if (atomic_load(&l->stopping)) {
        ev_break(ev, EVBREAK_ALL);
        return;
    }
    pthread_mutex_lock(&l->inbox_lock);
    sn_loop_cmd *c = l->inbox;
    l->inbox = l->inbox_tail = NULL;
    pthread_mutex_unlock(&l->inbox_lock);
    while (c) {
        sn_loop_cmd *next = c->next;
        c->run(c);
        c = next;
    }
    if (l->hooks.woken)
        l->hooks.woken(l->hooks.ud);
    sn_loop_hold(l);
}

static void on_signal(struct ev_loop *ev, ev_signal *w, int revents)
{
    (void)revents;
    sn_loop *l = w->data;
    sn_log_write(l->log, SN_LOG_INFO, NULL, "signal %d: stopping", w->signum);
    if (l->hooks.signal)
        l->hooks.signal(l->hooks.ud, w->signum);
    atomic_store(&l->stopping, 1);
    ev_break(ev, EVBREAK_ALL);
}

sn_loop *sn_loop_new(sn_log *log)
{
    sn_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->ev = ev_loop_new(EVFLAG_AUTO);
    if (!l->ev) {
        free(l);
        return NULL;
    }
    l->log = log;
    atomic_init(&l->work, 0);
    atomic_init(&l->stopping, 0);
    atomic_init(&l->serving, 0);
    pthread_mutex_init(&l->inbox_lock, NULL);
    ev_async_init(&l->wake, on_wake);
    l->wake.data = l;
    ev_async_start(l->ev, &l->wake);
    ev_unref(l->ev); /* the wake-up alone keeps nothing alive */
    return l;
}

void sn_loop_destroy(sn_loop **lp)
{
    if (!lp || !*lp)
        return;
    sn_loop *l = *lp;
    for (sn_loop_cmd *c = l->inbox; c;) {
        sn_loop_cmd *next = c->next;
        c->drop(c);
        c = next;
    }
    ev_loop_destroy(l->ev);
    pthread_mutex_destroy(&l->inbox_lock);
    free(l);
    *lp = NULL;
}

void sn_loop_set_hooks(sn_loop *l, const sn_loop_hooks *h)
{
    l->hooks = *h;
}

struct ev_loop *sn_loop_ev(sn_loop *l)
{
    return l->ev;
}

void sn_loop_send(sn_loop *l, sn_loop_cmd *c)
{
    c->next = NULL;
    pthread_mutex_lock(&l->inbox_lock);
    if (l->inbox_tail)
        l->inbox_tail->next = c;
    else
        l->inbox = c;
    l->inbox_tail = c;
    pthread_mutex_unlock(&l->inbox_lock);
    ev_async_send(l->ev, &l->wake);
}

void sn_loop_work(sn_loop *l, long delta)
{
    long old = atomic_fetch_add(&l->work, delta);
    /* a serving loop never ends for lack of work: no wake-up (a context switch per message
     * handled) to take or drop the reference */
    if (((old == 0 && delta > 0) || old + delta == 0) && !atomic_load(&l->serving))
        ev_async_send(l->ev, &l->wake);
}

void sn_loop_wake(sn_loop *l)
{
    ev_async_send(l->ev, &l->wake);
}

static void start_signals(sn_loop *l)
{
    ev_signal_init(&l->sigint, on_signal, SIGINT);
    ev_signal_init(&l->sigterm, on_signal, SIGTERM);
    l->sigint.data = l->sigterm.data = l;
    ev_signal_start(l->ev, &l->sigint);
    ev_signal_start(l->ev, &l->sigterm);
}

void sn_loop_serve(sn_loop *l)
{
    if (l->signals == 1) { /* caught already without holding the loop: hold it now */
        ev_ref(l->ev);
        ev_ref(l->ev);
    } else if (!l->signals) {
        start_signals(l);
    }
    l->signals = 2;
    atomic_store(&l->serving, 1);
}

void sn_loop_catch_signals(sn_loop *l)
{
    if (l->signals)
        return;
    start_signals(l);
    ev_unref(l->ev); /* the watchers alone keep nothing alive */
    ev_unref(l->ev);
    l->signals = 1;
}

void sn_loop_run(sn_loop *l)
{
    on_wake(l->ev, &l->wake, 0); /* take the reference for the work queued so far */
    ev_run(l->ev, 0);
}

void sn_loop_stop(sn_loop *l)
{
    atomic_store(&l->stopping, 1);
    ev_async_send(l->ev, &l->wake);
}

int sn_loop_stopping(sn_loop *l)
{
    return atomic_load(&l->stopping);
}
