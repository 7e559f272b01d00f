/* sn_sched: one mutex-protected FIFO, a one-task slot per worker for what it queues for
 * itself, and a condition variable idle workers sleep on without spinning. */
#include "sn_sched.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* A task a worker queued for itself (its slot) runs when that worker's current task ends, as
 * on one thread: no wake-up, no hop to another core (a ping-pong then costs the CPU of one
 * thread). If the worker stays busy, an idle worker watching the slots takes a task that
 * sat in one for a whole period: the extra latency is at most about two periods. The period
 * starts at WATCH_FIRST_NS and doubles up to WATCH_MAX_NS while the watcher finds nothing to
 * take (slots in steady use by short turns); the watcher wakes only while slots are in use,
 * so an idle node has none. */
static const long WATCH_FIRST_NS = 250 * 1000, WATCH_MAX_NS = 4000 * 1000;

/* A slot task is left where it is, for at most STEAL_DEFER_MAX looks, while its worker
 * used less than half of the period's CPU: that worker is preempted (or blocked), not
 * running a long turn, and taking its task would move the actor (and the one it talks to)
 * to a cold core. Under load, a preemption of one period made ping-pong pairs hop between
 * the workers (issue 17): each hop costs a cache refill. The bound keeps the latency of
 * a task behind a blocked worker at a few periods: 1 + STEAL_DEFER_MAX of them, 16 ms at
 * most with WATCH_MAX_NS. */
enum { STEAL_DEFER_MAX = 3 };

typedef struct worker {
    struct sn_sched *sched;
    int index;
    pthread_t thread;
    sn_task *slot;          /* queued by this worker for itself; under the lock */
    unsigned long slot_seq; /* counts the tasks put in slot */
    unsigned long seen_seq; /* slot_seq at the watcher's last look */
    clockid_t cpu;          /* the thread's CPU clock; has_cpu 0 when there is none */
    int has_cpu;
    long cpu_seen;          /* its CPU time (ns) at the watcher's last look */
    int deferred;           /* looks the stale slot task was left in place */
} worker;

struct sn_sched {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    sn_task *head, *tail;
    int sleepers;       /* workers waiting on `ready` */
    int held;           /* workers whose slot holds a task */
    int watcher;        /* a sleeper waits with a timeout to take stale slot tasks */
    int calling;        /* a sleeper was signalled to become the watcher */
    unsigned long puts; /* tasks put in any slot */
    atomic_int stopping;
    int nworkers;
    sn_sched_hooks hooks;
    worker *workers;
};

/* The worker running on this thread, so that a push from inside a task can use its slot. A
 * thread belongs to one pool for its life; the pointer is never shared. */
static _Thread_local worker *self;

/* Appends t to the run queue. Under the lock. Returns 1 when a sleeper must be woken (one
 * per task queued): the caller signals s->ready, after unlocking where it can, so that the
 * woken worker does not block at once on the lock its waker still holds. */
static int enqueue_quiet(sn_sched *s, sn_task *t)
{
    t->next = NULL;
    if (s->tail)
        s->tail->next = t;
    else
        s->head = t;
    s->tail = t;
    return s->sleepers > 0;
}

/* enqueue_quiet, signalling under the lock. */
static void enqueue(sn_sched *s, sn_task *t)
{
    if (enqueue_quiet(s, t))
        pthread_cond_signal(&s->ready);
}

/* The next task for w: its slot, unless others wait in the queue (then the slot goes to
 * the queue's tail, so that two actors passing messages cannot starve the rest). */
static sn_task *take(sn_sched *s, worker *w)
{
    sn_task *t = w->slot;
    if (t) {
        w->slot = NULL;
        s->held--;
        if (!s->head)
            return t;
        enqueue(s, t);
    }
    t = s->head;
    if (t) {
        s->head = t->next;
        if (!s->head)
            s->tail = NULL;
        t->next = NULL;
    }
    return t;
}

/* CPU nanoseconds v's thread has used since the previous call (a large value when its
 * clock cannot be read: then v counts as running). Under the lock. */
static long cpu_since(worker *v)
{
    struct timespec ts;
    if (!v->has_cpu || clock_gettime(v->cpu, &ts) != 0)
        return LONG_MAX;
    long now = (long)ts.tv_sec * 1000000000L + ts.tv_nsec, ran = now - v->cpu_seen;
    v->cpu_seen = now;
    return ran;
}

/* The watcher's look, period ns after the last: a task that has sat in another worker's
 * slot since then, unless that worker hardly ran (see STEAL_DEFER_MAX). Under the lock. */
static sn_task *steal_stale(sn_sched *s, worker *w, long period)
{
    sn_task *found = NULL;
    for (int i = 0; i < s->nworkers; i++) {
        worker *v = &s->workers[i];
        if (v == w || !v->slot)
            continue;
        long ran = cpu_since(v);
        if (v->slot_seq != v->seen_seq) {
            v->deferred = 0;
        } else if (!found) {
            if (ran < period / 2 && v->deferred < STEAL_DEFER_MAX) {
                v->deferred++; /* preempted or blocked: it may take its task back */
            } else {
                v->deferred = 0;
                found = v->slot;
                v->slot = NULL;
                s->held--;
            }
        }
        v->seen_seq = v->slot_seq;
    }
    return found;
}

/* Asks a sleeper to watch the slots, when a task sits in one and no one watches. Under the
 * lock. Returns 1 when s->ready must be signalled (see enqueue_quiet). */
static int call_watcher_quiet(sn_sched *s)
{
    if (s->held && !s->watcher && !s->calling && s->sleepers) {
        s->calling = 1;
        return 1;
    }
    return 0;
}

static void call_watcher(sn_sched *s)
{
    if (call_watcher_quiet(s))
        pthread_cond_signal(&s->ready);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sn_sched *s = w->sched;
    self = w;
    void *data = s->hooks.worker_init ? s->hooks.worker_init(s->hooks.ud, w->index) : NULL;
    int watching = 0, woken = 0;
    unsigned long puts_seen = 0;
    long period = WATCH_FIRST_NS, waited = WATCH_FIRST_NS;
    clockid_t cpu;
    int has_cpu = pthread_getcpuclockid(pthread_self(), &cpu) == 0;
    pthread_mutex_lock(&s->lock);
    w->cpu = cpu;
    w->has_cpu = has_cpu;
    while (!atomic_load(&s->stopping)) {
        sn_task *t = take(s, w);
        if (!t && watching) {
            t = steal_stale(s, w, waited);
            if (!t && s->puts == puts_seen && !s->held) { /* the slots went quiet: retire */
                s->watcher = 0;
                watching = 0;
            }
        }
        if (t) {
            if (watching) { /* busy now: another sleeper may watch */
                s->watcher = 0;
                watching = 0;
            }
            if (woken && s->calling) /* the call may have woken this worker: pass it on */
                s->calling = 0;
            woken = 0;
            call_watcher(s);
            pthread_mutex_unlock(&s->lock);
            t->run(t, data);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        s->calling = 0; /* a worker about to wait answers the call itself */
        if (!watching && s->held && !s->watcher) {
            s->watcher = 1;
            watching = 1;
            period = WATCH_FIRST_NS;
            for (int i = 0; i < s->nworkers; i++) { /* nothing is stale yet */
                s->workers[i].seen_seq = s->workers[i].slot_seq;
                s->workers[i].deferred = 0;
                if (&s->workers[i] != w && s->workers[i].slot)
                    (void)cpu_since(&s->workers[i]);
            }
        }
        s->sleepers++;
        if (watching) {
            puts_seen = s->puts;
            struct timespec ts;
            sn_clock_deadline(&ts, period);
            waited = period;
            period = period < WATCH_MAX_NS / 2 ? period * 2 : WATCH_MAX_NS;
            /* signalled, timed out or spurious: look again either way */
            (void)pthread_cond_timedwait(&s->ready, &s->lock, &ts);
        } else {
            pthread_cond_wait(&s->ready, &s->lock);
        }
        s->sleepers--;
        woken = 1;
    }
    if (watching)
        s->watcher = 0;
    pthread_mutex_unlock(&s->lock);
    if (s->hooks.worker_fini)
        s->hooks.worker_fini(s->hooks.ud, data);
    return NULL;
}

sn_sched *sn_sched_new(int nworkers, const sn_sched_hooks *hooks, int *err)
{
    sn_sched *s = calloc(1, sizeof *s);
    if (!s || !(s->workers = calloc((size_t)nworkers, sizeof *s->workers))) {
        free(s);
        *err = SN_ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->stopping, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->ready, &ca);
    pthread_condattr_destroy(&ca);
    s->hooks = *hooks;
    /* The slots of workers not started yet must read as empty before the first starts. */
    for (int i = 0; i < nworkers; i++)
        s->workers[i] = (worker){.sched = s, .index = i};
    pthread_mutex_lock(&s->lock); /* steal_stale reads nworkers */
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            pthread_mutex_unlock(&s->lock);
            sn_sched_destroy(&s);
            *err = SN_EIO;
            return NULL;
        }
        s->nworkers = i + 1;
    }
    pthread_mutex_unlock(&s->lock);
    *err = SN_OK;
    return s;
}

void sn_sched_destroy(sn_sched **sp)
{
    if (!sp || !*sp)
        return;
    sn_sched *s = *sp;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stopping, 1);
    pthread_cond_broadcast(&s->ready);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = &s->workers[i];
        if (w->slot && s->hooks.discard)
            s->hooks.discard(s->hooks.ud, w->slot);
        w->slot = NULL;
    }
    while (s->head) {
        sn_task *t = s->head;
        s->head = t->next;
        if (s->hooks.discard)
            s->hooks.discard(s->hooks.ud, t);
    }
    pthread_cond_destroy(&s->ready);
    pthread_mutex_destroy(&s->lock);
    free(s->workers);
    free(s);
    *sp = NULL;
}

void sn_sched_push(sn_sched *s, sn_task *t)
{
    t->next = NULL;
    worker *w = self;
    int wake;
    pthread_mutex_lock(&s->lock);
    if (w && w->sched == s) {
        /* This worker runs t next: no one to wake. A task already in the slot goes to the
         * queue (and wakes a sleeper), so that tasks queued one after the other by one turn
         * start in that order (two jobs submitted in a row: the first starts first). */
        sn_task *before = w->slot;
        w->slot = t;
        w->slot_seq++;
        s->puts++;
        wake = before ? enqueue_quiet(s, before) : (s->held++, 0);
        wake += call_watcher_quiet(s); /* a sleeper watches, in case this worker stays busy */
    } else {
        wake = enqueue_quiet(s, t);
    }
    pthread_mutex_unlock(&s->lock);
    while (wake-- > 0) /* after the unlock: the woken worker can take the lock at once */
        pthread_cond_signal(&s->ready);
}

int sn_sched_workers(const sn_sched *s)
{
    return s->nworkers;
}
