/* sn_node: the loop thread does timers (and later I/O) only; workers run actors and jobs.
 * "Pending work" counts queued messages, jobs queued or running, and timer requests not yet
 * armed; the loop holds a libev reference while it is not zero, so ev_run returns exactly
 * when nothing can happen any more (armed timers keep it alive by themselves). */
#include "sn_node.h"
#include "lua_actor.h"
#include "lua_worker.h"
#include "sn_actor.h"
#include "sn_actors.h"
#include "sn_error.h"
#include "sn_limits.h"
#include "sn_locks.h"
#include "sn_once.h"
#include "sn_sched.h"

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TIMER_BUCKETS = 256 };
static const double LOCK_LEASE = 0.1; /* reliability.md: an unreleased grant expires */

/* A timer, asked for by a worker and armed by the loop thread: it re-runs a job, or tells an
 * actor that its stage.addtask task is due. */
typedef enum cmd_kind { CMD_RERUN, CMD_ARM, CMD_CANCEL, CMD_LOCKS } cmd_kind;

typedef struct timer {
    ev_timer w;
    struct timer *next; /* in the inbox, then in its timer bucket */
    sn_node *node;
    cmd_kind kind;
    uint64_t id;    /* task id (CMD_ARM, CMD_CANCEL) */
    uint64_t actor; /* CMD_ARM */
    sn_job *job;    /* CMD_RERUN */
    double delay;
} timer;

struct sn_node {
    const sn_opts *opts;
    sn_log *log;
    struct ev_loop *loop;
    char name[256];
    double start;
    sn_sched *sched;
    sn_jobs *jobs;
    sn_shared *shared;
    sn_actors *actors;
    sn_router *router;
    sn_locks *locks;
    sn_once *once;
    sn_limits_table *limits;
    uint64_t main_actor;

    atomic_long work;
    atomic_uint_fast64_t next_id;
    atomic_int stopping;
    int exit_status;
    int holding; /* loop thread: a libev reference is held for pending work */
    ev_async wake;
    ev_timer lock_timer; /* loop thread: the next lock lease end */

    sn_worker **workers; /* by index, filled by each worker as it starts */
    int nworkers;
    pthread_t watchdog;
    int watchdog_running;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_stop;
    int watch_quit;

    pthread_mutex_t inbox_lock; /* commands for the loop thread, FIFO */
    timer *inbox, *inbox_tail;
    timer *armed[TIMER_BUCKETS]; /* loop thread: armed timers by id (reruns under id 0) */
};

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void work_add(sn_node *n, long delta)
{
    long old = atomic_fetch_add(&n->work, delta);
    if ((old == 0 && delta > 0) || old + delta == 0)
        ev_async_send(n->loop, &n->wake);
}

/* Queues a command for the loop thread. Any thread. */
static void send_cmd(sn_node *n, timer *t)
{
    t->next = NULL;
    pthread_mutex_lock(&n->inbox_lock);
    if (n->inbox_tail)
        n->inbox_tail->next = t;
    else
        n->inbox = t;
    n->inbox_tail = t;
    pthread_mutex_unlock(&n->inbox_lock);
    ev_async_send(n->loop, &n->wake);
}

/* ---- the loop thread -------------------------------------------------------------------- */

/* Holds one libev reference exactly while work is pending. Loop thread; every loop callback
 * that changes work calls it before returning, or ev_run could end in between. */
static void update_hold(sn_node *n)
{
    int busy = atomic_load(&n->work) > 0;
    if (busy && !n->holding) {
        ev_ref(n->loop);
        n->holding = 1;
    } else if (!busy && n->holding) {
        ev_unref(n->loop);
        n->holding = 0;
    }
}

static timer **bucket_of(sn_node *n, uint64_t id)
{
    return &n->armed[id % TIMER_BUCKETS];
}

static void unlink_timer(sn_node *n, timer *t)
{
    for (timer **p = bucket_of(n, t->id); *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            return;
        }
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    timer *t = (timer *)w;
    sn_node *n = t->node;
    ev_timer_stop(loop, w);
    unlink_timer(n, t);
    if (t->kind == CMD_RERUN) {
        work_add(n, 1);
        sn_jobs_submit(n->jobs, t->job);
    } else {
        sn_msg *m = sn_msg_new(SN_MSG_TIMER, NULL, NULL, NULL, NULL, 0);
        if (m) {
            m->handle = t->id;
            if (sn_node_post(n, t->actor, m, 1) != SN_OK)
                sn_msg_destroy(&m); /* the actor is gone */
        }
    }
    free(t);
    update_hold(n);
}

static void deliver_grant(sn_lock_req *g, void *ud)
{
    sn_node *n = ud;
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, g->cb, NULL, NULL, g->data, g->len);
    if (m && sn_node_post(n, g->actor, m, 1) != SN_OK)
        sn_msg_destroy(&m);
    sn_lock_req_destroy(&g);
}

/* Expires lock leases and re-arms for the next lease end. Loop thread. */
static void on_locks(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    sn_node *n = w->data;
    double now = monotonic_now();
    double next = sn_locks_expire(n->locks, now, deliver_grant, n);
    ev_timer_stop(loop, w);
    if (next > 0) {
        ev_timer_set(w, next - now > 0 ? next - now : 0, 0);
        ev_timer_start(loop, w);
    }
    update_hold(n);
}

static void run_cmd(sn_node *n, timer *t)
{
    switch (t->kind) {
    case CMD_RERUN:
    case CMD_ARM:
        ev_timer_init(&t->w, on_timer, t->delay, 0);
        ev_timer_start(n->loop, &t->w);
        t->next = *bucket_of(n, t->id);
        *bucket_of(n, t->id) = t;
        work_add(n, -1); /* the armed timer keeps the loop alive from now on */
        break;
    case CMD_CANCEL:
        for (timer *a = *bucket_of(n, t->id); a; a = a->next) {
            if (a->kind == CMD_ARM && a->id == t->id) {
                ev_timer_stop(n->loop, &a->w);
                unlink_timer(n, a);
                free(a);
                break;
            }
        }
        free(t);
        break;
    case CMD_LOCKS:
        on_locks(n->loop, &n->lock_timer, 0);
        free(t);
        break;
    }
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    sn_node *n = w->data;
    if (atomic_load(&n->stopping)) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    pthread_mutex_lock(&n->inbox_lock);
    timer *t = n->inbox;
    n->inbox = n->inbox_tail = NULL;
    pthread_mutex_unlock(&n->inbox_lock);
    while (t) {
        timer *next = t->next;
        run_cmd(n, t);
        t = next;
    }
    update_hold(n);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static int preload_required(const sn_opts *o)
{
    return strcmp(o->preload, "preload") != 0;
}

static void *worker_init(void *ud, int index)
{
    sn_node *n = ud;
    sn_worker_conf conf = {
        .node = n,
        .index = index,
        .node_name = n->name,
        .preload = n->opts->preload,
        .preload_required = preload_required(n->opts),
        .start = n->start,
        .log = n->log,
    };
    sn_worker *w = sn_worker_new(&conf);
    pthread_mutex_lock(&n->watch_lock);
    n->workers[index] = w;
    pthread_mutex_unlock(&n->watch_lock);
    return w;
}

/* The watchdog (Skynet's monitor): Lua code is stopped by the budget hook, but a C function
 * (string.rep of a huge size, a blocking call) cannot be interrupted; this thread at least
 * says which actor is stuck, in which handler, for how long. */
static void *watchdog_main(void *arg)
{
    sn_node *n = arg;
    double threshold = sn_limits_of(n->limits, "").budget;
    if (threshold <= 0)
        threshold = 5.0;
    double *last = calloc((size_t)n->nworkers, sizeof *last);
    pthread_mutex_lock(&n->watch_lock);
    while (!n->watch_quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&n->watch_stop, &n->watch_lock, &ts);
        for (int i = 0; i < n->nworkers && !n->watch_quit && last; i++) {
            char who[96], what[128];
            double busy = n->workers[i] ? sn_worker_busy_for(n->workers[i], who, sizeof who,
                                                             what, sizeof what) : 0;
            if (busy < threshold) {
                last[i] = 0;
            } else if (busy - last[i] >= threshold) {
                last[i] = busy;
                sn_log_write(n->log, SN_LOG_WARN, who, "actor %s busy for %.0f s%s%s%s", who,
                             busy, what[0] ? " in handler '" : "", what, what[0] ? "'" : "");
            }
        }
    }
    pthread_mutex_unlock(&n->watch_lock);
    free(last);
    return NULL;
}

static void stop_watchdog(sn_node *n)
{
    if (!n->watchdog_running)
        return;
    pthread_mutex_lock(&n->watch_lock);
    n->watch_quit = 1;
    pthread_cond_signal(&n->watch_stop);
    pthread_mutex_unlock(&n->watch_lock);
    pthread_join(n->watchdog, NULL);
    n->watchdog_running = 0;
}

static void worker_fini(void *ud, void *worker)
{
    (void)ud;
    sn_worker_destroy((sn_worker **)&worker);
}

/* A task queued when the node stopped: an actor (drop the queue's reference) or a job. */
static void discard_task(void *ud, sn_task *t)
{
    (void)ud;
    if (t->run == sn_actor_run) {
        sn_actor *a = sn_actor_of_task(t);
        sn_actor_release(&a);
    } else {
        sn_job *job = sn_job_of_task(t);
        sn_job_destroy(&job);
    }
}

sn_node *sn_node_new(const sn_opts *o, sn_log *log)
{
    sn_node *n = calloc(1, sizeof *n);
    if (!n) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the node: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    n->opts = o;
    n->log = log;
    n->start = monotonic_now();
    atomic_init(&n->work, 0);
    atomic_init(&n->next_id, 1);
    atomic_init(&n->stopping, 0);
    pthread_mutex_init(&n->inbox_lock, NULL);
    pthread_mutex_init(&n->watch_lock, NULL);
    pthread_cond_init(&n->watch_stop, NULL);
    if (o->name) {
        snprintf(n->name, sizeof n->name, "%s", o->name);
    } else {
        char host[200] = "node";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(n->name, sizeof n->name, "%s-%ld", host, (long)getpid());
    }
    n->loop = ev_loop_new(EVFLAG_AUTO);
    n->shared = sn_shared_new();
    n->actors = sn_actors_new();
    n->router = sn_router_new();
    n->locks = sn_locks_new(LOCK_LEASE);
    n->once = sn_once_new();
    n->limits = sn_limits_new(o->stage.item, o->stage.n);
    if (!n->loop || !n->shared || !n->actors || !n->router || !n->locks || !n->once ||
        !n->limits) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the node: %s",
                     sn_strerror(SN_ENOMEM));
        sn_node_destroy(&n);
        return NULL;
    }
    ev_async_init(&n->wake, on_wake);
    n->wake.data = n;
    ev_async_start(n->loop, &n->wake);
    ev_unref(n->loop); /* the wake-up alone keeps nothing alive */
    ev_timer_init(&n->lock_timer, on_locks, 0, 0);
    n->lock_timer.data = n;

    int workers = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 1)
        workers = 1;
    n->workers = calloc((size_t)workers, sizeof *n->workers);
    n->nworkers = workers;
    sn_sched_hooks hooks = {.worker_init = worker_init,
                            .worker_fini = worker_fini,
                            .discard = discard_task,
                            .ud = n};
    int err;
    n->sched = n->workers ? sn_sched_new(workers, &hooks, &err) : NULL;
    n->jobs = n->sched ? sn_jobs_new(n->sched, sn_worker_run_job) : NULL;
    if (n->jobs && pthread_create(&n->watchdog, NULL, watchdog_main, n) == 0)
        n->watchdog_running = 1;
    if (!n->jobs) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot start %d worker threads: %s", workers,
                     sn_strerror(n->sched ? SN_ENOMEM : err));
        sn_node_destroy(&n);
        return NULL;
    }
    return n;
}

static void free_timers(timer *t)
{
    while (t) {
        timer *next = t->next;
        sn_job_destroy(&t->job);
        free(t);
        t = next;
    }
}

void sn_node_destroy(sn_node **np)
{
    if (!np || !*np)
        return;
    sn_node *n = *np;
    stop_watchdog(n);
    sn_sched_destroy(&n->sched); /* first: no worker touches anything below after this */
    sn_jobs_destroy(&n->jobs);
    for (int i = 0; i < TIMER_BUCKETS; i++)
        free_timers(n->armed[i]);
    free_timers(n->inbox);
    sn_actors_destroy(&n->actors);
    sn_router_destroy(&n->router);
    sn_locks_destroy(&n->locks);
    sn_once_destroy(&n->once);
    sn_limits_destroy(&n->limits);
    sn_shared_destroy(&n->shared);
    if (n->loop)
        ev_loop_destroy(n->loop);
    pthread_mutex_destroy(&n->inbox_lock);
    pthread_mutex_destroy(&n->watch_lock);
    pthread_cond_destroy(&n->watch_stop);
    free(n->workers);
    free(n);
    *np = NULL;
}

/* Creates an actor of stage called name and registers it; its first message is start. */
static int add_actor(sn_node *n, const char *stage, const char *name, sn_msg *start,
                     uint64_t *id)
{
    const sn_opts *o = n->opts;
    sn_actor_conf conf = {
        .node = n,
        .id = sn_node_next_id(n),
        .stage = stage,
        .name = name,
        .node_name = n->name,
        .preload = o->preload,
        .preload_required = preload_required(o),
        .script = o->script,
        .args = o->script_args,
        .nargs = o->script_nargs,
        .start = n->start,
        .limits = sn_limits_of(n->limits, stage),
        .log = n->log,
        .run = sn_actor_run,
    };
    char autoname[320];
    if (!name) {
        snprintf(autoname, sizeof autoname, "%s#%llu", stage, (unsigned long long)conf.id);
        conf.name = autoname;
    }
    int err;
    sn_actor *a = sn_actor_new(&conf, &err);
    if (!a)
        return err;
    if (sn_actor_keep_start(a, start) != SN_OK || sn_actors_add(n->actors, a) != SN_OK) {
        sn_actor_release(&a);
        return SN_ENOMEM;
    }
    *id = conf.id; /* before the start message: the actor may fail at once */
    if (sn_router_add(n->router, stage, conf.id) != SN_OK ||
        sn_node_post(n, conf.id, start, 1) != SN_OK) {
        sn_router_remove(n->router, stage, conf.id);
        sn_actors_remove(n->actors, conf.id);
        return SN_ENOMEM;
    }
    return SN_OK;
}

int sn_node_spawn(sn_node *n, const char *stage, const char *script, const void *payload,
                  size_t len, uint64_t *id)
{
    sn_msg *m = script ? sn_msg_new(SN_MSG_START, NULL, NULL, NULL, script, strlen(script) + 1)
                       : sn_msg_new(SN_MSG_START_FN, NULL, NULL, NULL, payload, len);
    if (!m)
        return SN_ENOMEM;
    int rc = add_actor(n, stage, NULL, m, id);
    if (rc != SN_OK)
        sn_msg_destroy(&m);
    return rc;
}

/* --actor SID=FILE[:N]: N actors of stage SID running FILE. */
static int spawn_option(sn_node *n, const char *spec)
{
    char stage[256], file[4096];
    const char *eq = strchr(spec, '=');
    snprintf(stage, sizeof stage, "%.*s", (int)(eq - spec), spec);
    snprintf(file, sizeof file, "%s", eq + 1);
    long count = 1;
    char *colon = strrchr(file, ':');
    if (colon) {
        count = strtol(colon + 1, NULL, 10);
        *colon = '\0';
    }
    if (access(file, R_OK) != 0) {
        sn_log_write(n->log, SN_LOG_ERROR, NULL, "--actor %s: cannot read '%s'", spec, file);
        return SN_ENOENT;
    }
    for (long i = 0; i < count; i++) {
        uint64_t id;
        int rc = sn_node_spawn(n, stage, file, NULL, 0, &id);
        if (rc != SN_OK)
            return rc;
    }
    return SN_OK;
}

int sn_node_run(sn_node *n)
{
    const sn_opts *o = n->opts;
    for (int i = 0; i < o->actor.n; i++) { /* first: the script may signal them at once */
        if (spawn_option(n, o->actor.item[i]) != SN_OK)
            return 1;
    }
    if (o->script) {
        sn_msg *m = sn_msg_new(SN_MSG_START, NULL, NULL, NULL, o->script, strlen(o->script) + 1);
        if (!m || add_actor(n, "main", "main", m, &n->main_actor) != SN_OK) {
            sn_msg_destroy(&m);
            return 1;
        }
    }
    on_wake(n->loop, &n->wake, 0); /* take the reference for the work queued so far */
    ev_run(n->loop, 0);
    stop_watchdog(n);
    sn_sched_destroy(&n->sched);
    return n->exit_status;
}

/* ---- for bindings and tasks ------------------------------------------------------------- */

sn_log *sn_node_log(sn_node *n)
{
    return n->log;
}

sn_shared *sn_node_shared(sn_node *n)
{
    return n->shared;
}

sn_router *sn_node_router(sn_node *n)
{
    return n->router;
}

const char *sn_node_name(sn_node *n)
{
    return n->name;
}

const char *sn_node_package(sn_node *n, int i)
{
    const sn_strlist *p = &n->opts->package;
    if (p->n == 0)
        return i == 0 ? "scripts" : NULL;
    return i < p->n ? p->item[i] : NULL;
}

uint64_t sn_node_next_id(sn_node *n)
{
    return atomic_fetch_add(&n->next_id, 1);
}

void sn_node_submit(sn_node *n, sn_job *job)
{
    job->seq = sn_node_next_id(n);
    work_add(n, 1);
    sn_jobs_submit(n->jobs, job);
}

void sn_node_job_ended(sn_node *n, sn_job *job, double rerun_ms)
{
    sn_jobs_done(n->jobs, job);
    timer *t = rerun_ms > 0 && !atomic_load(&n->stopping) ? calloc(1, sizeof *t) : NULL;
    if (!t) {
        sn_job_destroy(&job);
        work_add(n, -1);
        return;
    }
    t->node = n;
    t->kind = CMD_RERUN;
    t->job = job;
    t->delay = rerun_ms / 1000.0;
    send_cmd(n, t); /* the job's unit of work passes to the timer there */
}

void sn_node_timer_arm(sn_node *n, uint64_t task, uint64_t actor, double ms)
{
    timer *t = calloc(1, sizeof *t);
    if (!t) {
        sn_log_write(n->log, SN_LOG_ERROR, NULL, "timer %llu not armed: %s",
                     (unsigned long long)task, sn_strerror(SN_ENOMEM));
        return;
    }
    t->node = n;
    t->kind = CMD_ARM;
    t->id = task;
    t->actor = actor;
    t->delay = ms > 0 ? ms / 1000.0 : 0;
    work_add(n, 1); /* until the loop has armed it */
    send_cmd(n, t);
}

void sn_node_timer_cancel(sn_node *n, uint64_t task)
{
    timer *t = calloc(1, sizeof *t);
    if (!t)
        return; /* it will fire and find no task: harmless */
    t->node = n;
    t->kind = CMD_CANCEL;
    t->id = task;
    send_cmd(n, t);
}

int sn_node_lock(sn_node *n, sn_lock_op op, const char *name, uint64_t actor, const char *cb,
                 const void *data, size_t len, double ms)
{
    double now = monotonic_now();
    sn_lock_req *grant = NULL;
    int rc;
    switch (op) {
    case SN_LOCK_ACQUIRE:
        rc = sn_locks_acquire(n->locks, name, actor, cb, data, len, now, &grant);
        break;
    case SN_LOCK_EXTEND: rc = sn_locks_extend(n->locks, name, actor, ms, now); break;
    default: rc = sn_locks_release(n->locks, name, actor, now, &grant); break;
    }
    if (grant)
        deliver_grant(grant, n);
    timer *t = rc == SN_OK ? calloc(1, sizeof *t) : NULL;
    if (t) { /* the loop re-arms its lease timer */
        t->node = n;
        t->kind = CMD_LOCKS;
        send_cmd(n, t);
    }
    return rc;
}

int sn_node_once(sn_node *n, const char *key, int forget)
{
    if (forget) {
        sn_once_forget(n->once, key);
        return 0;
    }
    return sn_once_first(n->once, key) == 1;
}

int sn_node_post(sn_node *n, uint64_t actor, sn_msg *m, int force)
{
    sn_actor *a = sn_actors_grab(n->actors, actor);
    if (!a)
        return SN_ENOENT;
    int wake;
    size_t warn;
    work_add(n, 1);
    int rc = sn_mailbox_push(sn_actor_mailbox(a), m, force, &wake, &warn);
    if (rc != SN_OK) {
        work_add(n, -1);
        sn_actor_release(&a);
        return rc;
    }
    if (warn)
        sn_log_write(n->log, SN_LOG_WARN, sn_actor_name(a), "mailbox overloaded: %zu messages",
                     warn);
    if (wake) /* the run queue keeps this reference until the actor goes idle */
        sn_sched_push(n->sched, sn_actor_task(a));
    else
        sn_actor_release(&a);
    return SN_OK;
}

void sn_node_msg_done(sn_node *n)
{
    work_add(n, -1);
}

void sn_node_reschedule(sn_node *n, sn_task *t)
{
    sn_sched_push(n->sched, t);
}

int sn_node_actor_failed(sn_node *n, uint64_t actor, const char *stage)
{
    if (actor == n->main_actor) { /* a standalone script failed: the node exits 1 */
        n->exit_status = 1;
        atomic_store(&n->stopping, 1);
        ev_async_send(n->loop, &n->wake);
        return 1;
    }
    sn_router_remove(n->router, stage, actor); /* no new message is routed to it */
    return 0;
}

int sn_node_mailbox(sn_node *n, uint64_t actor, size_t *len, size_t *peak)
{
    sn_actor *a = sn_actors_grab(n->actors, actor);
    if (!a)
        return SN_ENOENT;
    *len = sn_mailbox_length(sn_actor_mailbox(a), peak);
    sn_actor_release(&a);
    return SN_OK;
}

sn_limits sn_node_limits(sn_node *n, const char *stage)
{
    return sn_limits_of(n->limits, stage);
}
