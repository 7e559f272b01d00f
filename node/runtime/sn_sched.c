/* sn_sched: one mutex-protected FIFO and a condition variable; idle workers sleep on it. */
#include "sn_sched.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* An idle worker spins this long before it sleeps: a message hop between two actors on two
 * workers then costs no futex wake-up and no context switch (they were 40% of a ping-pong
 * profile). Short enough that an idle node uses no CPU. */
static const double SPIN_SECONDS = 50e-6;

typedef struct worker {
    sn_sched *sched;
    int index;
    pthread_t thread;
} worker;

struct sn_sched {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    sn_task *head, *tail;
    atomic_int queued;   /* tasks in the queue, read without the lock by spinners */
    int sleepers;        /* workers waiting on `ready` */
    atomic_int stopping;
    int nworkers;
    sn_sched_hooks hooks;
    worker *workers;
};

/* Spins (lock released) until a task is queued, stop is asked, or SPIN_SECONDS pass. */
static void spin(sn_sched *s)
{
    double until = sn_clock_mono() + SPIN_SECONDS;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&s->queued, memory_order_relaxed) ||
            atomic_load_explicit(&s->stopping, memory_order_relaxed))
            return;
        if ((i & 63) == 0 && sn_clock_mono() > until)
            return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sn_sched *s = w->sched;
    void *data = s->hooks.worker_init ? s->hooks.worker_init(s->hooks.ud, w->index) : NULL;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (!s->head && !atomic_load(&s->stopping)) {
            pthread_mutex_unlock(&s->lock);
            spin(s);
            pthread_mutex_lock(&s->lock);
        }
        while (!s->head && !atomic_load(&s->stopping)) {
            s->sleepers++;
            pthread_cond_wait(&s->ready, &s->lock);
            s->sleepers--;
        }
        if (atomic_load(&s->stopping))
            break;
        sn_task *t = s->head;
        s->head = t->next;
        if (!s->head)
            s->tail = NULL;
        atomic_fetch_sub_explicit(&s->queued, 1, memory_order_relaxed);
        t->next = NULL;
        pthread_mutex_unlock(&s->lock);
        t->run(t, data);
        pthread_mutex_lock(&s->lock);
    }
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
    atomic_init(&s->queued, 0);
    atomic_init(&s->stopping, 0);
    pthread_cond_init(&s->ready, NULL);
    s->hooks = *hooks;
    for (int i = 0; i < nworkers; i++) {
        s->workers[i] = (worker){.sched = s, .index = i};
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            sn_sched_destroy(&s);
            *err = SN_EIO;
            return NULL;
        }
        s->nworkers = i + 1;
    }
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
    pthread_mutex_lock(&s->lock);
    if (s->tail)
        s->tail->next = t;
    else
        s->head = t;
    s->tail = t;
    atomic_fetch_add_explicit(&s->queued, 1, memory_order_relaxed);
    if (s->sleepers) /* a spinning worker sees `queued` without a wake-up */
        pthread_cond_signal(&s->ready);
    pthread_mutex_unlock(&s->lock);
}

int sn_sched_workers(const sn_sched *s)
{
    return s->nworkers;
}
