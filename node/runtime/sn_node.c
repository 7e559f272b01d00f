/* sn_node: the loop thread does timers (and later I/O) only; workers run actors and jobs.
 * "Pending work" counts queued messages, jobs queued or running, and timer requests not yet
 * armed; the loop holds a libev reference while it is not zero, so ev_run returns exactly
 * when nothing can happen any more (armed timers keep it alive by themselves). */
#include "sn_node.h"
#include "lua_actor.h"
#include "sn_cluster.h"
#include "sn_fcache.h"
#include "sn_http.h"
#include "sn_metrics.h"
#include "sn_status.h"
#include "lua_worker.h"
#include "sn_actor.h"
#include "sn_actors.h"
#include "sn_error.h"
#include "sn_limits.h"
#include "sn_locks.h"
#include "sn_once.h"
#include "sn_sched.h"

#include <ev.h>
#include <signal.h>
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

    struct sn_cluster *cluster; /* NULL on a standalone node */
    sn_fcache *fcache;
    sn_http *http;
    sn_metrics *metrics;
    sn_metrics_std m;
    sn_series *seq_gaps, *seq_dups; /* stage_wire_seq_{gaps,dups}_total */
    ev_signal sigint, sigterm;
    _Atomic uint64_t c_in, c_out, c_dropped, c_errors, c_jobs, c_restarts, c_failures;
    atomic_long jobs_live; /* submitted and not finished (queued, running, waiting a re-run) */
    pthread_mutex_t errors_lock; /* the last errors, for the status view */
    struct {
        double time;
        char who[64];
        char text[256];
    } errors[SN_STATUS_MAX_ERRORS];
    int nerrors, errors_at;

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
    if (g->node[0]) { /* the requester is on another node: the grant travels */
        if (n->cluster)
            sn_cluster_lock_grant(n->cluster, g->node, g->actor, g->cb, g->data, g->len);
        sn_lock_req_destroy(&g);
        return;
    }
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
    if (n->cluster)
        sn_cluster_flush(n->cluster);
    update_hold(n);
}

/* SIGINT / SIGTERM: leave the cluster cleanly, then stop (exit status 0). */
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    sn_node *n = w->data;
    sn_log_write(n->log, SN_LOG_INFO, NULL, "signal %d: stopping", w->signum);
    if (n->cluster)
        sn_cluster_leave(n->cluster);
    atomic_store(&n->stopping, 1);
    ev_break(loop, EVBREAK_ALL);
}

/* The log's tap: the last errors, for the dashboard. */
static void remember_error(void *ud, const char *who, const char *text)
{
    sn_node *n = ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&n->errors_lock);
    int i = n->errors_at;
    n->errors_at = (n->errors_at + 1) % SN_STATUS_MAX_ERRORS;
    if (n->nerrors < SN_STATUS_MAX_ERRORS)
        n->nerrors++;
    n->errors[i].time = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    snprintf(n->errors[i].who, sizeof n->errors[i].who, "%s", who);
    size_t len = strcspn(text, "\n"); /* the first line: the message */
    snprintf(n->errors[i].text, sizeof n->errors[i].text, "%.*s", (int)len, text);
    pthread_mutex_unlock(&n->errors_lock);
    atomic_fetch_add(&n->c_errors, 1);
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
    pthread_mutex_init(&n->errors_lock, NULL);
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
    n->fcache = sn_fcache_new();
    if (!n->loop || !n->shared || !n->actors || !n->router || !n->locks || !n->once ||
        !n->limits || !n->fcache) {
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
    n->metrics = sn_metrics_new(0);
    if (!n->metrics || sn_metrics_std_register(n->metrics, &n->m, n->name,
                                               o->cluster ? o->cluster : "stage",
                                               SN_VERSION) != SN_OK) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the metrics: %s",
                     sn_strerror(SN_ENOMEM));
        sn_node_destroy(&n);
        return NULL;
    }
    sn_metric *gaps, *dups;
    sn_metric_desc gd = {.type = SN_METRIC_COUNTER, .name = "stage_wire_seq_gaps_total",
                         .help = "Messages from peers that never arrived (per-pair sequence gaps)"};
    sn_metric_desc dd = {.type = SN_METRIC_COUNTER, .name = "stage_wire_seq_dups_total",
                         .help = "Messages from peers seen twice and dropped (must stay 0)"};
    if (sn_metrics_add(n->metrics, &gd, &gaps) == SN_OK)
        n->seq_gaps = sn_metric_child(gaps, NULL, NULL);
    if (sn_metrics_add(n->metrics, &dd, &dups) == SN_OK)
        n->seq_dups = sn_metric_child(dups, NULL, NULL);
    sn_log_tap(log, remember_error, n);

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
    sn_http_destroy(&n->http); /* first: its thread reads the rest */
    stop_watchdog(n);
    sn_sched_destroy(&n->sched); /* no worker touches anything below after this */
    sn_cluster_destroy(&n->cluster);
    if (n->log)
        sn_log_tap(n->log, NULL, NULL);
    sn_jobs_destroy(&n->jobs);
    for (int i = 0; i < TIMER_BUCKETS; i++)
        free_timers(n->armed[i]);
    free_timers(n->inbox);
    sn_actors_destroy(&n->actors);
    sn_router_destroy(&n->router);
    sn_locks_destroy(&n->locks);
    sn_once_destroy(&n->once);
    sn_limits_destroy(&n->limits);
    sn_fcache_destroy(&n->fcache);
    sn_shared_destroy(&n->shared);
    if (n->loop)
        ev_loop_destroy(n->loop);
    pthread_mutex_destroy(&n->inbox_lock);
    pthread_mutex_destroy(&n->watch_lock);
    pthread_mutex_destroy(&n->errors_lock);
    sn_metrics_destroy(&n->metrics);
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
    if (n->cluster)
        sn_cluster_registry_changed(n->cluster);
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

static int render_metrics(void *ud, char **body, size_t *len);
static int render_status(void *ud, char **body, size_t *len);

/* ---- the cluster's hooks (h/cluster: the lead moves these to main.c at merge) ---- */

static int hook_deliver(void *ud, const sn_wire_message *m, int trusted)
{
    return sn_node_deliver(ud, m, trusted);
}

static int hook_post(void *ud, uint64_t actor, sn_msg *m, int force)
{
    return sn_node_post(ud, actor, m, force);
}

static void hook_each_stage(void *ud, void (*fn)(const char *, size_t, void *), void *fud)
{
    sn_router_each(sn_node_router(ud), fn, fud);
}

static int hook_status_self(void *ud, char **json, size_t *len)
{
    return sn_node_status_self(ud, json, len);
}

static int hook_lock_at_home(void *ud, sn_lock_op op, const char *lock, const char *node,
                             uint64_t actor, const char *handler, const void *data, size_t len,
                             double ms)
{
    return sn_node_lock_at_home(ud, op, lock, node, actor, handler, data, len, ms);
}

static void hook_set_remote(void *ud, const char *node, const char *stage, uint32_t count)
{
    sn_router_set_remote(sn_node_router(ud), node, stage, count);
}

static void hook_drop_node(void *ud, const char *node)
{
    sn_router_drop_node(sn_node_router(ud), node);
}

static void hook_wake(void *ud)
{
    sn_node_wake(ud);
}

static sn_cluster_hooks cluster_hooks(sn_node *n)
{
    return (sn_cluster_hooks){.ud = n, .deliver = hook_deliver, .post = hook_post,
                              .each_stage = hook_each_stage, .status_self = hook_status_self,
                              .lock_at_home = hook_lock_at_home, .set_remote = hook_set_remote,
                              .drop_node = hook_drop_node, .wake = hook_wake};
}

/* The listeners: the cluster's sockets and the HTTP endpoint. Each keeps the node serving. */
static int open_listeners(sn_node *n)
{
    const sn_opts *o = n->opts;
    int err;
    if (o->listen || o->join.n) {
        sn_cluster_hooks hooks = cluster_hooks(n);
        n->cluster = sn_cluster_new(o, n->loop, n->name, n->log, &hooks, &err);
        if (!n->cluster)
            return err;
    }
    if (o->http) {
        sn_http_handlers h = {.metrics = render_metrics, .status = render_status, .ud = n};
        n->http = sn_http_new(o->http, &h, n->log, &err);
        if (!n->http) {
            sn_log_write(n->log, SN_LOG_ERROR, NULL, "cannot serve HTTP on %s: %s", o->http,
                         sn_strerror(err));
            return err;
        }
    }
    if (n->cluster || n->http) { /* a listener: serve until a signal says stop */
        ev_signal_init(&n->sigint, on_signal, SIGINT);
        ev_signal_init(&n->sigterm, on_signal, SIGTERM);
        n->sigint.data = n->sigterm.data = n;
        ev_signal_start(n->loop, &n->sigint);
        ev_signal_start(n->loop, &n->sigterm);
    }
    return SN_OK;
}

int sn_node_run(sn_node *n)
{
    const sn_opts *o = n->opts;
    if (open_listeners(n) != SN_OK)
        return 1;
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
    atomic_fetch_add(&n->c_jobs, 1);
    atomic_fetch_add(&n->jobs_live, 1);
    sn_series_inc(n->m.jobs);
    work_add(n, 1);
    sn_jobs_submit(n->jobs, job);
}

void sn_node_job_ended(sn_node *n, sn_job *job, double rerun_ms)
{
    sn_jobs_done(n->jobs, job);
    timer *t = rerun_ms > 0 && !atomic_load(&n->stopping) ? calloc(1, sizeof *t) : NULL;
    if (!t) {
        sn_job_destroy(&job);
        atomic_fetch_sub(&n->jobs_live, 1);
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

int sn_node_lock_at_home(sn_node *n, sn_lock_op op, const char *name, const char *node,
                         uint64_t actor, const char *cb, const void *data, size_t len, double ms)
{
    double now = monotonic_now();
    sn_lock_req *grant = NULL;
    int rc;
    switch (op) {
    case SN_LOCK_ACQUIRE:
        rc = sn_locks_acquire(n->locks, name, node, actor, cb, data, len, now, &grant);
        break;
    case SN_LOCK_EXTEND: rc = sn_locks_extend(n->locks, name, node, actor, ms, now); break;
    default: rc = sn_locks_release(n->locks, name, node, actor, now, &grant); break;
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

int sn_node_lock(sn_node *n, sn_lock_op op, const char *name, uint64_t actor, const char *cb,
                 const void *data, size_t len, double ms)
{
    char home[SN_ROUTER_NODE_MAX];
    if (n->cluster && sn_cluster_lock_home(n->cluster, name, home, sizeof home))
        return sn_cluster_lock_send(n->cluster, home, op, name, actor, cb, data, len, ms);
    return sn_node_lock_at_home(n, op, name, "", actor, cb, data, len, ms);
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
    if (n->cluster)
        sn_cluster_registry_changed(n->cluster);
    atomic_fetch_add(&n->c_failures, 1);
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

/* ---- the cluster's side ----------------------------------------------------------------- */

sn_fcache *sn_node_fcache(sn_node *n)
{
    return n->fcache;
}

struct sn_cluster *sn_node_cluster(sn_node *n)
{
    return n->cluster;
}

void sn_node_wake(sn_node *n)
{
    ev_async_send(n->loop, &n->wake);
}

/* Queues a message from another node for one local actor; SN_OK, SN_EFULL, ... */
static int post_remote(sn_node *n, uint64_t actor, const sn_wire_message *w, int trusted)
{
    sn_msg *m = sn_msg_new_from(SN_MSG_SIGNAL, w->msg_id, w->reply_id[0] ? w->reply_id : NULL,
                                w->src.stage, w->src.node, w->src.incarnation, w->session,
                                w->payload.data, w->payload.len);
    if (!m)
        return SN_ENOMEM;
    m->src = w->src.actor;
    if (!trusted)
        m->flags |= SN_MSG_F_UNTRUSTED;
    int rc = sn_node_post(n, actor, m, 0);
    if (rc != SN_OK)
        sn_msg_destroy(&m);
    return rc;
}

int sn_node_deliver(sn_node *n, const sn_wire_message *w, int trusted)
{
    const char *stage = w->dst.stage;
    if (w->mode == SN_WIRE_ALL) { /* every local instance, once */
        size_t count = sn_router_count(n->router, stage);
        uint64_t *ids = count ? malloc(count * sizeof *ids) : NULL;
        count = ids ? sn_router_all(n->router, stage, ids, count) : 0;
        int queued = 0, full = 0;
        for (size_t i = 0; i < count; i++) {
            int rc = post_remote(n, ids[i], w, trusted);
            queued += rc == SN_OK;
            full |= rc == SN_EFULL;
        }
        free(ids);
        if (!queued)
            sn_node_count(n, SN_COUNT_DROP, stage, full ? "mailbox_full" : "no_route");
        return queued ? SN_WIRE_OK : full ? SN_WIRE_MAILBOX_FULL : SN_WIRE_NO_ROUTE;
    }
    int full = 0; /* one instance here, round-robin, skipping full mailboxes */
    for (size_t k = 0;; k++) {
        uint64_t id = sn_router_pick(n->router, stage, k);
        if (!id)
            break;
        int rc = post_remote(n, id, w, trusted);
        if (rc == SN_OK)
            return SN_WIRE_OK;
        full |= rc == SN_EFULL;
    }
    sn_node_count(n, SN_COUNT_DROP, stage, full ? "mailbox_full" : "no_route");
    return full ? SN_WIRE_MAILBOX_FULL : SN_WIRE_NO_ROUTE;
}

typedef struct stage_acc {
    char (*names)[256];
    sn_wire_stage *v;
    size_t n, cap;
} stage_acc;

static void add_stage(const char *stage, size_t count, void *ud)
{
    stage_acc *a = ud;
    if (a->n >= a->cap)
        return;
    snprintf(a->names[a->n], 256, "%s", stage);
    a->v[a->n].stage = a->names[a->n];
    a->v[a->n].actors = (uint32_t)count;
    a->n++;
}

size_t sn_node_local_stages(sn_node *n, char (*names)[256], sn_wire_stage *v, size_t cap)
{
    stage_acc a = {names, v, 0, cap};
    sn_router_each(n->router, add_stage, &a);
    return a.n;
}

/* ---- counting --------------------------------------------------------------------------- */

void sn_node_count(sn_node *n, sn_count what, const char *stage, const char *label)
{
    switch (what) {
    case SN_COUNT_IN:
        atomic_fetch_add(&n->c_in, 1);
        sn_series_inc(sn_metric_child(n->m.messages_in, stage, NULL));
        break;
    case SN_COUNT_OUT:
        atomic_fetch_add(&n->c_out, 1);
        sn_series_inc(sn_metric_child(n->m.messages_out, stage, NULL));
        break;
    case SN_COUNT_DROP:
        atomic_fetch_add(&n->c_dropped, 1);
        sn_series_inc(sn_metric_child(n->m.messages_dropped, stage, label));
        break;
    case SN_COUNT_ERROR:
        sn_series_inc(sn_metric_child(n->m.errors, stage, label));
        break;
    case SN_COUNT_KILL:
        sn_series_inc(sn_metric_child(n->m.kills, stage, label));
        break;
    case SN_COUNT_RESTART:
        atomic_fetch_add(&n->c_restarts, 1);
        break;
    case SN_COUNT_FAIL:
        break;
    }
}

void sn_node_observe(sn_node *n, const char *stage, double seconds)
{
    sn_series_observe(sn_metric_child(n->m.handler_seconds, stage, NULL), seconds);
}

/* ---- the views: /metrics and /status.json (the HTTP thread) ----------------------------- */

/* Per stage: actors, queued messages and Lua memory, summed over this node's actors. */
typedef struct stage_sum {
    char stage[256];
    uint64_t actors, depth, memory;
} stage_sum;

typedef struct sums {
    stage_sum *v;
    size_t n, cap;
} sums;

static void sum_actor(sn_actor *a, void *ud)
{
    sums *s = ud;
    stage_sum *e = NULL;
    for (size_t i = 0; i < s->n && !e; i++)
        e = strcmp(s->v[i].stage, sn_actor_stage(a)) == 0 ? &s->v[i] : NULL;
    if (!e) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            stage_sum *v = realloc(s->v, cap * sizeof *v);
            if (!v)
                return;
            s->v = v;
            s->cap = cap;
        }
        e = &s->v[s->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->stage, sizeof e->stage, "%s", sn_actor_stage(a));
    }
    if (!sn_actor_failed(a))
        e->actors++;
    e->depth += sn_mailbox_length(sn_actor_mailbox(a), NULL);
    e->memory += sn_actor_memory(a);
}

static sums stage_sums(sn_node *n)
{
    sums s = {0};
    sn_actors_each(n->actors, sum_actor, &s);
    return s;
}

static int render_metrics(void *ud, char **body, size_t *len)
{
    sn_node *n = ud;
    sums s = stage_sums(n);
    for (size_t i = 0; i < s.n; i++) { /* gauges of this moment */
        sn_series_set(sn_metric_child(n->m.actors, s.v[i].stage, NULL), (double)s.v[i].actors);
        sn_series_set(sn_metric_child(n->m.mailbox_depth, s.v[i].stage, NULL),
                      (double)s.v[i].depth);
        sn_series_set(sn_metric_child(n->m.lua_memory, s.v[i].stage, NULL),
                      (double)s.v[i].memory);
    }
    free(s.v);
    sn_series_set(n->m.workers, n->nworkers);
    sn_series_set(n->m.jobs_running, (double)atomic_load(&n->jobs_live));
    if (n->cluster) {
        size_t counts[4];
        sn_cluster_peer_counts(n->cluster, counts);
        static const char *const states[4] = {"alive", "suspect", "down", "left"};
        for (int i = 0; i < 4; i++)
            sn_series_set(sn_metric_child(n->m.peers, states[i], NULL), (double)counts[i]);
        sn_cluster_stats st;
        sn_cluster_stats_get(n->cluster, &st);
        sn_series_set_counter(n->m.wire_bytes_in, st.bytes_in);
        sn_series_set_counter(n->m.wire_bytes_out, st.bytes_out);
        sn_series_set_counter(n->m.wire_messages_in, st.frames_in);
        sn_series_set_counter(n->m.wire_messages_out, st.frames_out);
        sn_series_set_counter(n->seq_gaps, st.seq_gaps);
        sn_series_set_counter(n->seq_dups, st.seq_dups);
    }
    uint64_t hits, misses;
    sn_fcache_counts(n->fcache, &hits, &misses);
    sn_series_set_counter(n->m.cache_hits, hits);
    sn_series_set_counter(n->m.cache_misses, misses);
    return sn_metrics_render(n->metrics, 16u << 20, body, len);
}

/* Fills v with this node's own view; the arrays are the caller's to free (free_view). */
static void fill_view(sn_node *n, sn_status_view *v, sums *s, sn_status_stage **stages,
                      sn_status_mailbox **boxes, sn_status_error *errors)
{
    memset(v, 0, sizeof *v);
    v->name = n->name;
    v->cluster = n->cluster ? sn_cluster_cluster(n->cluster) : (n->opts->cluster ? n->opts->cluster
                                                                                   : "stage");
    v->version = SN_VERSION;
    v->incarnation = n->cluster ? sn_cluster_incarnation(n->cluster) : 0;
    v->uptime_s = monotonic_now() - n->start;
    v->listen = n->cluster ? sn_cluster_endpoint(n->cluster) : "";
    v->http = n->opts->http ? n->opts->http : "";
    *s = stage_sums(n);
    *stages = calloc(s->n ? s->n : 1, sizeof **stages);
    *boxes = calloc(s->n ? s->n : 1, sizeof **boxes);
    uint64_t depth = 0, memory = 0, actors = 0;
    for (size_t i = 0; *stages && *boxes && i < s->n; i++) {
        (*stages)[i] = (sn_status_stage){s->v[i].stage, s->v[i].actors};
        (*boxes)[i] = (sn_status_mailbox){s->v[i].stage, s->v[i].depth};
        depth += s->v[i].depth;
        memory += s->v[i].memory;
        actors += s->v[i].actors;
    }
    v->stages = *stages;
    v->nstages = *stages && *boxes ? s->n : 0;
    v->mailboxes = *boxes;
    v->nmailboxes = v->nstages;
    pthread_mutex_lock(&n->errors_lock);
    for (int i = 0; i < n->nerrors; i++) { /* newest first */
        int k = (n->errors_at - 1 - i + 2 * SN_STATUS_MAX_ERRORS) % SN_STATUS_MAX_ERRORS;
        errors[i] = (sn_status_error){n->errors[k].time, strdup(n->errors[k].who),
                                      strdup(n->errors[k].text)};
    }
    v->nerrors = (size_t)n->nerrors;
    pthread_mutex_unlock(&n->errors_lock);
    v->errors = errors;
    sn_cluster_stats st = {0};
    if (n->cluster)
        sn_cluster_stats_get(n->cluster, &st);
    v->counters = (sn_status_counters){
        .messages_in = atomic_load(&n->c_in),
        .messages_out = atomic_load(&n->c_out),
        .messages_dropped = atomic_load(&n->c_dropped),
        .errors = atomic_load(&n->c_errors),
        .jobs = atomic_load(&n->c_jobs),
        .actors = actors,
        .workers = (uint64_t)n->nworkers,
        .mailbox_depth = depth,
        .lua_memory_bytes = memory,
        .wire_bytes_in = st.bytes_in,
        .wire_bytes_out = st.bytes_out,
        .function_cache_hits = 0,
    };
    uint64_t misses;
    sn_fcache_counts(n->fcache, &v->counters.function_cache_hits, &misses);
}

static void free_view(sn_status_view *v, sums *s, sn_status_stage *stages,
                      sn_status_mailbox *boxes, sn_status_error *errors)
{
    for (size_t i = 0; i < v->nerrors; i++) {
        free((char *)errors[i].actor);
        free((char *)errors[i].text);
    }
    free(stages);
    free(boxes);
    free(s->v);
}

int sn_node_status_self(sn_node *n, char **json, size_t *len)
{
    sn_status_view v;
    sums s;
    sn_status_stage *stages;
    sn_status_mailbox *boxes;
    sn_status_error errors[SN_STATUS_MAX_ERRORS];
    fill_view(n, &v, &s, &stages, &boxes, errors);
    int rc = sn_status_render_self(&v, json, len);
    free_view(&v, &s, stages, boxes, errors);
    return rc;
}

static int render_status(void *ud, char **body, size_t *len)
{
    sn_node *n = ud;
    sn_status_view v;
    sums s;
    sn_status_stage *stages;
    sn_status_mailbox *boxes;
    sn_status_error errors[SN_STATUS_MAX_ERRORS];
    fill_view(n, &v, &s, &stages, &boxes, errors);
    sn_member_view *mv = NULL; /* h/cluster: the cluster's own view, converted here */
    size_t nv = n->cluster ? sn_cluster_members(n->cluster, &mv) : 0, np = nv;
    sn_status_member *members = calloc(np ? np : 1, sizeof *members);
    sn_status_peer *peers = calloc(np ? np : 1, sizeof *peers);
    if (!members || !peers)
        np = 0;
    for (size_t i = 0; i < np; i++) {
        members[i] = (sn_status_member){mv[i].name, mv[i].endpoint, mv[i].http, mv[i].state,
                                        mv[i].incarnation, mv[i].last_seen_s};
        peers[i] = (sn_status_peer){mv[i].name, mv[i].status_json, mv[i].status_len,
                                    mv[i].status_age_s, mv[i].error};
    }
    v.members = members;
    v.nmembers = np;
    int rc = sn_status_render_cluster(&v, peers, np, body, len);
    free(members);
    free(peers);
    sn_cluster_members_free(mv, nv);
    free_view(&v, &s, stages, boxes, errors);
    return rc;
}
