/* sn_node: the node's lifecycle, its actors and jobs, the mail between them, locks and
 * counting. The loop thread is sn_loop, timers are sn_timers, routing is sn_send, and the
 * views of /metrics and /status.json are node/ops/sn_views. */
#include "sn_node.h"
#include "sn_clock.h"
#include "sn_actor.h"
#include "sn_actors.h"
#include "sn_error.h"
#include "sn_guard.h"
#include "sn_limits.h"
#include "sn_locks.h"
#include "sn_loop.h"
#include "sn_once.h"
#include "sn_sched.h"
#include "sn_send.h"
#include "sn_stats.h"
#include "sn_timers.h"
#include "sn_watchdog.h"

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const double LOCK_LEASE = 0.1; /* docs/cluster.md, "Ordered locks": a grant expires */
enum { SN_NODE_SHUTDOWN_MS = 10000 }; /* --set shutdown's default, for settings not parsed */

struct sn_node {
    const sn_opts *opts;
    sn_log *log;
    sn_vm_ops vm;
    sn_node_remote remote;
    sn_loop *loop;
    sn_timers *timers;
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

    atomic_uint_fast64_t next_id;
    int exit_status;
    ev_timer lock_timer; /* loop thread: the next lock lease end */

    int nworkers;
    sn_watchdog *watchdog;
    sn_stats *stats;

    char inbox_stage[64]; /* sn_node_inbox: an internal stage served by a function */
    int (*inbox_fn)(void *ud, const void *p, size_t len);
    void *inbox_ud;
    atomic_int closing; /* stopping: new work (posts, jobs, spawns, timers, locks) refused */
    sn_guard *guard;    /* bounds the shutdown (--set shutdown) */
};

/* New work after the node started to stop is refused: the workers, the loop and the cluster
 * that would carry it out are going away (a finalizer run by lua_close posts at exit). */
static int closing(sn_node *n)
{
    return atomic_load_explicit(&n->closing, memory_order_acquire);
}

/* ---- the loop thread -------------------------------------------------------------------- */

static void actor_due(void *ud, uint64_t task, uint64_t actor)
{
    sn_node *n = ud;
    sn_msg *m = sn_msg_new(SN_MSG_TIMER, NULL, NULL, NULL, NULL, 0);
    if (m) {
        m->handle = task;
        if (sn_node_post(n, actor, m, 1) != SN_OK)
            sn_msg_destroy(&m); /* the actor is gone */
    }
}

static void job_due(void *ud, sn_job *job)
{
    sn_node *n = ud;
    sn_loop_work(n->loop, 1);
    sn_jobs_submit(n->jobs, job);
}

static void deliver_grant(sn_lock_req *g, void *ud)
{
    sn_node *n = ud;
    if (g->node[0]) { /* the requester is on another node: the grant travels */
        if (n->remote.lock_grant)
            n->remote.lock_grant(n->remote.ud, g->node, g->actor, g->cb, g->data, g->len);
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
    double now = sn_clock_mono();
    double next = sn_locks_expire(n->locks, now, deliver_grant, n);
    ev_timer_stop(loop, w);
    if (next > 0) {
        ev_timer_set(w, next - now > 0 ? next - now : 0, 0);
        ev_timer_start(loop, w);
    }
    sn_loop_hold(n->loop);
}

/* A command for the loop thread about the whole node (re-arm the lock lease, stage.exit). */
typedef struct node_cmd {
    sn_loop_cmd cmd; /* first */
    sn_node *node;
} node_cmd;

static void run_locks_cmd(sn_loop_cmd *c)
{
    sn_node *n = ((node_cmd *)c)->node;
    free(c);
    on_locks(sn_loop_ev(n->loop), &n->lock_timer, 0);
}

static void drop_cmd(sn_loop_cmd *c)
{
    free(c);
}

static void on_woken(void *ud)
{
    sn_node *n = ud;
    if (n->remote.flush)
        n->remote.flush(n->remote.ud);
}

static void on_signal(void *ud, int signum)
{
    (void)signum;
    sn_node *n = ud;
    if (n->remote.leave)
        n->remote.leave(n->remote.ud);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static int preload_required(const sn_opts *o)
{
    return strcmp(o->preload, "preload") != 0;
}

static void *worker_init(void *ud, int index)
{
    sn_node *n = ud;
    sn_vm_worker conf = {
        .node = n,
        .index = index,
        .node_name = n->name,
        .preload = n->opts->preload,
        .preload_required = preload_required(n->opts),
        .start = n->start,
        .log = n->log,
    };
    void *w = n->vm.worker_init(n->vm.ud, &conf);
    sn_watchdog_worker(n->watchdog, index, w);
    return w;
}

static void worker_fini(void *ud, void *worker)
{
    sn_node *n = ud;
    n->vm.worker_fini(n->vm.ud, worker);
}

/* A task queued when the node stopped: an actor (drop the queue's reference) or a job. */
static void discard_task(void *ud, sn_task *t)
{
    sn_node *n = ud;
    if (t->run == n->vm.actor_run) {
        sn_actor *a = sn_actor_of_task(t);
        sn_actor_release(&a);
    } else {
        sn_job *job = sn_job_of_task(t);
        sn_job_destroy(&job);
    }
}

sn_node *sn_node_new(const sn_opts *o, sn_log *log, const sn_vm_ops *vm)
{
    sn_node *n = calloc(1, sizeof *n);
    if (!n) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the node: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    n->opts = o;
    n->log = log;
    n->vm = *vm;
    n->start = sn_clock_mono();
    atomic_init(&n->next_id, 1);
    atomic_init(&n->closing, 0);
    if (o->name) {
        snprintf(n->name, sizeof n->name, "%s", o->name);
    } else {
        char host[200] = "node";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(n->name, sizeof n->name, "%s-%ld", host, (long)getpid());
    }
    n->loop = sn_loop_new(log);
    sn_timers_hooks th = {.actor_due = actor_due, .job_due = job_due, .ud = n};
    n->timers = n->loop ? sn_timers_new(n->loop, &th) : NULL;
    n->shared = sn_shared_new();
    n->actors = sn_actors_new();
    n->router = sn_router_new();
    n->locks = sn_locks_new(LOCK_LEASE);
    n->once = sn_once_new(o->once_keys > 0 ? (size_t)o->once_keys : SN_ONCE_KEYS_DEFAULT, log);
    n->limits = sn_limits_new(o->stage.item, o->stage.n);
    if (!n->loop || !n->timers || !n->shared || !n->actors || !n->router || !n->locks ||
        !n->once || !n->limits) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the node: %s",
                     sn_strerror(SN_ENOMEM));
        sn_node_destroy(&n);
        return NULL;
    }
    sn_loop_hooks lh = {.woken = on_woken, .signal = on_signal, .ud = n};
    sn_loop_set_hooks(n->loop, &lh);
    ev_timer_init(&n->lock_timer, on_locks, 0, 0);
    n->lock_timer.data = n;
    n->stats = sn_stats_new(n->name, o->cluster ? o->cluster : "stage", SN_VERSION);
    if (!n->stats) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the metrics: %s",
                     sn_strerror(SN_ENOMEM));
        sn_node_destroy(&n);
        return NULL;
    }
    sn_log_tap(log, sn_stats_log_error, n->stats);

    int workers = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 1)
        workers = 1;
    n->nworkers = workers;
    n->watchdog = sn_watchdog_new(workers, sn_limits_of(n->limits, "").budget, &n->vm, log);
    sn_sched_hooks hooks = {.worker_init = worker_init,
                            .worker_fini = worker_fini,
                            .discard = discard_task,
                            .ud = n};
    int err;
    err = SN_ENOMEM;
    n->sched = n->watchdog ? sn_sched_new(workers, &hooks, &err) : NULL;
    n->jobs = n->sched ? sn_jobs_new(n->sched, n->vm.job_run) : NULL;
    if (!n->jobs) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot start %d worker threads: %s", workers,
                     sn_strerror(n->sched ? SN_ENOMEM : err));
        sn_node_destroy(&n);
        return NULL;
    }
    return n;
}

void sn_node_destroy(sn_node **np)
{
    if (!np || !*np)
        return;
    sn_node *n = *np;
    sn_node_stop(n); /* no worker touches anything below after this; the states are closed */
    if (n->log)
        sn_log_tap(n->log, NULL, NULL);
    sn_jobs_destroy(&n->jobs);
    sn_timers_destroy(&n->timers);
    sn_loop_destroy(&n->loop);
    sn_actors_destroy(&n->actors);
    sn_router_destroy(&n->router);
    sn_locks_destroy(&n->locks);
    sn_once_destroy(&n->once);
    sn_limits_destroy(&n->limits);
    sn_shared_destroy(&n->shared);
    sn_watchdog_destroy(&n->watchdog);
    sn_stats_destroy(&n->stats);
    sn_guard_destroy(&n->guard);
    free(n);
    *np = NULL;
}

struct ev_loop *sn_node_loop(sn_node *n)
{
    return sn_loop_ev(n->loop);
}

sn_loop *sn_node_cmdloop(sn_node *n)
{
    return n->loop;
}

void sn_node_attach(sn_node *n, const sn_node_remote *remote, int serve)
{
    n->remote = *remote;
    if (serve)
        sn_loop_serve(n->loop);
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
        .vm = &n->vm,
        .stats = n->stats,
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
    if (n->remote.stages_changed)
        n->remote.stages_changed(n->remote.ud);
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
    if (closing(n))
        return SN_ECLOSED;
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

/* Spawns the --actor actors, then the script's main actor. SN_OK or an error (logged). */
static int start_actors(sn_node *n)
{
    const sn_opts *o = n->opts;
    for (int i = 0; i < o->actor.n; i++) { /* first: the script may signal them at once */
        int rc = spawn_option(n, o->actor.item[i]);
        if (rc != SN_OK)
            return rc;
    }
    if (!o->script)
        return SN_OK;
    sn_msg *m = sn_msg_new(SN_MSG_START, NULL, NULL, NULL, o->script, strlen(o->script) + 1);
    int rc = m ? add_actor(n, "main", "main", m, &n->main_actor) : SN_ENOMEM;
    if (rc != SN_OK)
        sn_msg_destroy(&m);
    return rc;
}

int sn_node_run(sn_node *n)
{
    int status, rc = start_actors(n);
    if (rc == SN_OK) {
        sn_loop_run(n->loop);
        status = n->exit_status;
    } else { /* node.md: a value that proves bad at start-up is a usage error */
        status = rc == SN_ENOENT ? 2 : 1;
    }
    n->exit_status = status; /* what the shutdown guard exits with if it must */
    sn_node_stop(n);
    return status;
}

typedef struct actor_list {
    sn_actor **v;
    size_t n, cap;
} actor_list;

static void take_actor(sn_actor *a, void *ud)
{
    actor_list *l = ud;
    if (l->n < l->cap) {
        sn_actor_grab(a);
        l->v[l->n++] = a;
    }
}

/* Closes every actor's VM while the runtime still stands, so that what its finalizers call
 * finds the node whole (and refuses new work with SN_ECLOSED). Out of the table's lock:
 * finalizers may look actors up. */
static void close_states(sn_node *n)
{
    if (!n->actors)
        return;
    actor_list l = {0};
    l.cap = sn_actors_count(n->actors);
    if (!l.cap || !(l.v = calloc(l.cap, sizeof *l.v)))
        return; /* none, or out of memory: sn_actors_destroy closes them, still refusing */
    sn_actors_each(n->actors, take_actor, &l);
    for (size_t i = 0; i < l.n; i++) {
        sn_actor_close(l.v[i]);
        sn_actor_release(&l.v[i]);
    }
    free(l.v);
}

void sn_node_stop(sn_node *n)
{
    if (!atomic_exchange(&n->closing, 1)) { /* the first call: bound what follows */
        int ms = n->opts->shutdown_ms > 0 ? n->opts->shutdown_ms : SN_NODE_SHUTDOWN_MS;
        n->guard = sn_guard_new(ms, n->exit_status, n->log);
    }
    sn_watchdog_stop(n->watchdog);
    sn_sched_destroy(&n->sched); /* running tasks finish; queued ones are discarded */
    close_states(n);
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
    if (closing(n)) {
        sn_job_destroy(&job);
        return;
    }
    job->seq = sn_node_next_id(n);
    sn_stats_job(n->stats, 1);
    sn_loop_work(n->loop, 1);
    sn_jobs_submit(n->jobs, job);
}

void sn_node_job_ended(sn_node *n, sn_job *job, double rerun_ms)
{
    sn_jobs_done(n->jobs, job);
    if (rerun_ms > 0 && !sn_loop_stopping(n->loop) &&
        sn_timers_rerun(n->timers, job, rerun_ms) == SN_OK)
        return; /* the job's unit of work passes to the timer */
    sn_job_destroy(&job);
    sn_stats_job(n->stats, -1);
    sn_loop_work(n->loop, -1);
}

void sn_node_timer_arm(sn_node *n, uint64_t task, uint64_t actor, double ms)
{
    if (closing(n))
        return; /* it would never fire */
    if (sn_timers_arm(n->timers, task, actor, ms) != SN_OK)
        sn_log_write(n->log, SN_LOG_ERROR, NULL, "timer %llu not armed: %s",
                     (unsigned long long)task, sn_strerror(SN_ENOMEM));
}

void sn_node_timer_cancel(sn_node *n, uint64_t task)
{
    sn_timers_cancel(n->timers, task);
}

int sn_node_lock_at_home(sn_node *n, sn_lock_op op, const char *name, const char *node,
                         uint64_t actor, const char *cb, const void *data, size_t len, double ms)
{
    if (closing(n))
        return SN_ECLOSED;
    double now = sn_clock_mono();
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
    node_cmd *c = rc == SN_OK ? calloc(1, sizeof *c) : NULL;
    if (c) { /* the loop re-arms its lease timer */
        c->cmd.run = run_locks_cmd;
        c->cmd.drop = drop_cmd;
        c->node = n;
        sn_loop_send(n->loop, &c->cmd);
    }
    return rc;
}

int sn_node_lock(sn_node *n, sn_lock_op op, const char *name, uint64_t actor, const char *cb,
                 const void *data, size_t len, double ms)
{
    char home[SN_ROUTER_NODE_MAX];
    if (closing(n))
        return SN_ECLOSED;
    if (n->remote.lock_home && n->remote.lock_send &&
        n->remote.lock_home(n->remote.ud, name, home, sizeof home))
        return n->remote.lock_send(n->remote.ud, home, op, name, actor, cb, data, len, ms);
    return sn_node_lock_at_home(n, op, name, "", actor, cb, data, len, ms);
}

int sn_node_home(sn_node *n, const char *key, char *home, size_t cap)
{
    return n->remote.lock_home ? n->remote.lock_home(n->remote.ud, key, home, cap) : 0;
}

int sn_node_once(sn_node *n, const char *key, int forget, int *first)
{
    if (forget) {
        sn_once_forget(n->once, key);
        *first = 0;
        return SN_OK;
    }
    return sn_once_first(n->once, key, first);
}

size_t sn_node_once_keys(sn_node *n)
{
    return sn_once_max_keys(n->once);
}

int sn_node_post(sn_node *n, uint64_t actor, sn_msg *m, int force)
{
    if (closing(n))
        return SN_ECLOSED;
    sn_actor *a = sn_actors_grab(n->actors, actor);
    if (!a)
        return SN_ENOENT;
    int wake;
    size_t warn;
    sn_loop_work(n->loop, 1);
    int rc = sn_mailbox_push(sn_actor_mailbox(a), m, force, &wake, &warn);
    if (rc != SN_OK) {
        char why[320], full[32];
        /* every 10 s at most; each drop is counted */
        if (rc == SN_EFULL && sn_mailbox_full(sn_actor_mailbox(a), why, sizeof why))
            sn_log_write(n->log, SN_LOG_WARN, sn_actor_name(a), "%s, refusing messages: %s",
                         sn_error_text(SN_EFULL, NULL, full, sizeof full), why);
        sn_loop_work(n->loop, -1);
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
    sn_loop_work(n->loop, -1);
}

void sn_node_reschedule(sn_node *n, sn_task *t)
{
    sn_sched_push(n->sched, t);
}

/* stage.exit on the loop thread: leave the cluster as SIGTERM would, then stop. */
static void run_exit_cmd(sn_loop_cmd *c)
{
    sn_node *n = ((node_cmd *)c)->node;
    free(c);
    if (n->remote.leave)
        n->remote.leave(n->remote.ud);
    sn_loop_stop(n->loop);
}

int sn_node_exit(sn_node *n)
{
    node_cmd *c = calloc(1, sizeof *c);
    if (!c)
        return SN_ENOMEM;
    c->cmd.run = run_exit_cmd;
    c->cmd.drop = drop_cmd;
    c->node = n;
    sn_loop_send(n->loop, &c->cmd);
    return SN_OK;
}

int sn_node_actor_failed(sn_node *n, uint64_t actor, const char *stage)
{
    if (actor == n->main_actor) { /* a standalone script failed: the node exits 1 */
        n->exit_status = 1;
        sn_loop_stop(n->loop);
        return 1;
    }
    sn_router_remove(n->router, stage, actor); /* no new message is routed to it */
    if (n->remote.stages_changed)
        n->remote.stages_changed(n->remote.ud);
    sn_stats_count(n->stats, SN_COUNT_FAIL, stage, NULL);
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

void sn_node_wake(sn_node *n)
{
    sn_loop_wake(n->loop);
}

int sn_node_remote_send(sn_node *n, const char *node, int mode, const char *stage,
                        const sn_msg *m, const void *payload, size_t len)
{
    if (!n->remote.send)
        return SN_ENOENT;
    if (closing(n))
        return SN_ECLOSED; /* main may have freed the cluster */
    return n->remote.send(n->remote.ud, node, mode, stage, m, payload, len);
}

struct sn_loop *sn_node_cmd_loop(sn_node *n)
{
    return n->loop;
}

int sn_node_actor_alive(sn_node *n, uint64_t actor)
{
    sn_actor *a = sn_actors_grab(n->actors, actor);
    int alive = a && !sn_actor_failed(a);
    sn_actor_release(&a);
    return alive;
}

void sn_node_inbox(sn_node *n, const char *stage, int (*fn)(void *ud, const void *p, size_t len),
                   void *ud)
{
    snprintf(n->inbox_stage, sizeof n->inbox_stage, "%s", stage);
    n->inbox_fn = fn;
    n->inbox_ud = ud;
}

int sn_node_deliver(sn_node *n, const sn_wire_message *w, int trusted)
{
    if (n->inbox_fn && !strcmp(w->dst.stage, n->inbox_stage))
        return n->inbox_fn(n->inbox_ud, w->payload.data, w->payload.len);
    sn_msg *m = sn_msg_new_from(SN_MSG_SIGNAL, w->msg_id, w->reply_id[0] ? w->reply_id : NULL,
                                w->src.stage, w->src.node, w->src.incarnation, w->session,
                                w->payload.data, w->payload.len);
    if (!m)
        return SN_ENOMEM;
    m->src = w->src.actor;
    if (!trusted)
        m->flags |= SN_MSG_F_UNTRUSTED;
    sn_send s = {
        .stage = w->dst.stage,
        .scope = SN_SCOPE_LOCAL, /* it was routed to this node already */
        .broadcast = w->mode == SN_WIRE_ALL,
        .msg = m,
        .src_stage = w->src.stage,
    };
    size_t queued;
    return sn_send_route(n, &s, &queued); /* consumes m */
}

int sn_node_status_self(sn_node *n, char **json, size_t *len)
{
    if (!n->remote.status_self)
        return SN_ENOTSUP;
    return n->remote.status_self(n->remote.ud, json, len);
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

/* ---- for the views ---------------------------------------------------------------------- */

typedef struct sums {
    sn_node_stage_sum *v;
    size_t n, cap;
    int failed;
} sums;

static void sum_actor(sn_actor *a, void *ud)
{
    sums *s = ud;
    sn_node_stage_sum *e = NULL;
    for (size_t i = 0; i < s->n && !e; i++)
        e = strcmp(s->v[i].stage, sn_actor_stage(a)) == 0 ? &s->v[i] : NULL;
    if (!e) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            sn_node_stage_sum *v = realloc(s->v, cap * sizeof *v);
            if (!v) {
                s->failed = 1;
                return;
            }
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
    e->memory += sn_actor_memory(a) + sn_mailbox_bytes(sn_actor_mailbox(a)); /* as the cap */
}

size_t sn_node_stage_sums(sn_node *n, sn_node_stage_sum **v)
{
    sums s = {0};
    sn_actors_each(n->actors, sum_actor, &s);
    if (s.failed) {
        free(s.v);
        *v = NULL;
        return 0;
    }
    *v = s.v;
    return s.n;
}

sn_stats *sn_node_stats(sn_node *n)
{
    return n->stats;
}

int sn_node_workers(sn_node *n)
{
    return n->nworkers;
}

double sn_node_uptime(sn_node *n)
{
    return sn_clock_mono() - n->start;
}

const sn_opts *sn_node_opts(sn_node *n)
{
    return n->opts;
}
