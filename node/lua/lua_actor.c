/* lua_actor: one message at a time on the actor's state. Each message is handled inside a
 * protected call, so even our own pushes (which may hit the memory cap) cannot unwind past
 * it; the user's code runs in a nested protected call with a traceback and the governor. */
#include "lua_actor.h"
#include "sn_clock.h"
#include "lua_broker.h"
#include "lua_signal.h"
#include "lua_state.h"
#include "lua_thread.h"
#include "lua_timer.h"
#include "lua_waitfor.h"
#include "lua_worker.h"
#include "sn_actor.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_send.h"
#include "sn_snapshot.h"

#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { BATCH = 64 }; /* messages per turn, so that no actor starves the others */

/* An actor's VM: its host record and its state. */
typedef struct lua_vm {
    sn_lua_host host;
    lua_State *L;
} lua_vm;

static lua_State *state_of(sn_actor *a)
{
    lua_vm *vm = sn_actor_vm(a);
    return vm ? vm->L : NULL;
}

int sn_lua_actor_open(void *ud, const sn_vm_actor *conf, void **out)
{
    *out = NULL;
    lua_vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        sn_log_write(conf->log, SN_LOG_ERROR, conf->name, "cannot create actor: %s",
                     sn_strerror(SN_ENOMEM));
        return SN_ENOMEM;
    }
    vm->host = (sn_lua_host){
        .log = conf->log,
        .who = conf->name,
        .stage = conf->stage,
        .node_name = conf->node_name,
        .start = conf->start,
        .args = conf->args,
        .nargs = conf->nargs,
        .script = conf->script,
        .node = conf->node,
        .shared = conf->node ? sn_node_shared(conf->node) : NULL,
        .ctx = ud,
        .actor = conf->id,
        .counts = conf->actor ? sn_actor_counts(conf->actor) : NULL,
        .budget = conf->limits->budget,
        .mem_warn = conf->limits->memory_warn,
        .mem_cap = conf->limits->memory_cap,
        .mem_used = conf->memory,
    };
    vm->L = sn_lua_new(&vm->host);
    if (!vm->L) {
        free(vm);
        return SN_ENOMEM;
    }
    *out = vm; /* even when preload fails: the caller closes it */
    return sn_lua_run_preload(vm->L, conf->preload, conf->preload_required);
}

void sn_lua_actor_close(void *ud, void *p)
{
    (void)ud;
    lua_vm *vm = p;
    if (!vm)
        return;
    if (vm->L)
        lua_close(vm->L);
    free(vm);
}

void sn_lua_actor_ops(sn_lua_ctx *ctx, sn_vm_ops *ops)
{
    *ops = (sn_vm_ops){
        .actor_open = sn_lua_actor_open,
        .actor_close = sn_lua_actor_close,
        .actor_run = sn_lua_actor_run,
        .worker_init = sn_lua_worker_init,
        .worker_fini = sn_lua_worker_fini,
        .worker_busy_for = sn_lua_worker_busy_for,
        .job_run = sn_lua_worker_run_job,
        .ud = ctx,
    };
}

/* A spawned function as the actor's top level: fn(args...) from the snapshot. */
static int run_function(lua_State *L, const sn_msg *m)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1;
    char err[256];
    int n = 0;
    if (sn_snapshot_decode(L, m->data, m->len, &o, &n, err, sizeof err) != SN_OK || n < 1) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "cannot start: %s", err);
        return SN_EPROTO;
    }
    return sn_lua_pcall(L, n - 1, 0, "spawned function");
}

static int run_start(lua_State *L, const sn_msg *m)
{
    return m->kind == SN_MSG_START ? sn_lua_run_file(L, m->data) : run_function(L, m);
}

/* The top level failed: restart it (in a fresh state) while the policy allows, else the
 * actor is failed for good. */
static void start_failed(sn_actor *a, sn_node *n)
{
    sn_log *log = sn_node_log(n);
    double now = sn_clock_mono();
    int count = 0;
    while (sn_actor_may_restart(a, now, &count)) {
        sn_log_write(log, SN_LOG_WARN, sn_actor_name(a), "restarting (%d of at most %d in %g s)",
                     count, sn_actor_limits(a)->intensity, sn_actor_limits(a)->period);
        sn_stats_count(sn_node_stats(n), SN_COUNT_RESTART, sn_actor_stage(a), NULL);
        if (sn_actor_reset(a) != SN_OK) {
            sn_actor_fail(a);
            break;
        }
        if (run_start(state_of(a), sn_actor_start_msg(a)) == SN_OK)
            return;
    }
    if (sn_node_actor_failed(n, sn_actor_id(a), sn_actor_stage(a)))
        return; /* the standalone script: the node exits 1 */
    sn_actor_fail(a);
    if (sn_actor_limits(a)->restart == SN_RESTART_ALWAYS)
        sn_log_write(log, SN_LOG_ERROR, sn_actor_name(a),
                     "failed: giving up after %d restarts in %g s", count - 1,
                     sn_actor_limits(a)->period);
    else
        sn_log_write(log, SN_LOG_ERROR, sn_actor_name(a), "failed: its top level did not run "
                     "(restart=never); messages to it are answered as no route");
}

typedef struct job_args {
    sn_actor *a;
    sn_msg *m;
    int start_failed; /* handled outside: a restart closes the state handle runs on */
} job_args;

/* In protection: what one message does. */
static int handle(lua_State *L)
{
    job_args *j = lua_touserdata(L, 1);
    sn_actor *a = j->a;
    sn_msg *m = j->m;
    lua_settop(L, 0);
    if (sn_actor_failed(a)) { /* answered like a missing route */
        if (m->kind == SN_MSG_SIGNAL && m->reply) {
            char why[300];
            sn_send_why(SN_ENOENT, sn_actor_stage(a), why, sizeof why);
            sn_signal_reply_error(L, m, why);
        }
        return 0;
    }
    switch (m->kind) {
    case SN_MSG_START:
    case SN_MSG_START_FN:
        j->start_failed = run_start(L, m) != SN_OK;
        break;
    case SN_MSG_SIGNAL: {
        double t0 = sn_clock_mono();
        sn_waitfor_dispatch(L, m);
        double took = sn_clock_mono() - t0;
        sn_node *n = sn_actor_node(a);
        const sn_stats_stage *counts = sn_actor_counts(a);
        if (counts) {
            sn_stats_handled(sn_node_stats(n), counts, took);
        } else {
            sn_stats_count(sn_node_stats(n), SN_COUNT_IN, sn_actor_stage(a), NULL);
            sn_stats_observe(sn_node_stats(n), sn_actor_stage(a), took);
        }
        break;
    }
    case SN_MSG_HANDLER: sn_waitfor_adopt(L, m); break;
    case SN_MSG_TIMER: sn_lua_timer_message(L, m); break;
    case SN_MSG_THREAD:
    case SN_MSG_THREAD_END: sn_thread_deliver(L, m); break;
    case SN_MSG_BROKER:
        if (!sn_lua_host_of(L)->broker_batch) /* a socket handed over before it used broker */
            sn_lua_lazy_open(L, "broker");
        sn_lua_broker_deliver(L, m);
        break;
    }
    return 0;
}

/* The memory cap bounds the Lua heap plus the bytes still queued for the actor (the
 * mailbox refuses what would pass it): for this message, the heap gets what the queue
 * leaves. Only the worker running the actor reads host->mem_cap, so it may change here. */
static void bound_heap(sn_lua_host *host, sn_actor *a)
{
    size_t cap = sn_actor_limits(a)->memory_cap;
    if (!cap)
        return;
    size_t queued = sn_mailbox_bytes(sn_actor_mailbox(a));
    host->mem_cap = cap > queued ? cap - queued : 1; /* 0 would mean no cap */
}

/* A turn's socket operations wait in the state's batch (sn_lua_broker_hold): once a message
 * ends with some held, the first message to end this long after sends them, even while the
 * turn goes on (and the budget hook sends them during a long handler). */
static const double HOLD_MAX_S = 0.001;

void sn_lua_actor_run(sn_task *t, void *worker)
{
    sn_actor *a = sn_actor_of_task(t);
    sn_node *n = sn_actor_node(a);
    lua_State *held = NULL; /* the state whose socket operations this turn holds */
    double held_at = 0;     /* when a message first ended with some held; 0: none held */
    for (int i = 0; i < BATCH; i++) {
        sn_msg *m = sn_mailbox_pop(sn_actor_mailbox(a));
        if (!m)
            break;
        lua_State *L = state_of(a); /* may change: a restart makes a new one */
        if (!L) { /* a restart could not make a state: the actor is failed */
            sn_msg_destroy(&m);
            sn_node_msg_done(n);
            continue;
        }
        if (L != held) {
            sn_lua_broker_hold(L, 1);
            held = L;
            held_at = 0;
        }
        sn_lua_host *host = sn_lua_host_of(L);
        bound_heap(host, a);
        sn_lua_worker_busy(worker, sn_actor_name(a), m->kind == SN_MSG_SIGNAL ? m->name : NULL);
        job_args j = {a, m, 0};
        lua_pushcfunction(L, handle);
        lua_pushlightuserdata(L, &j);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            sn_log_write(host->log, SN_LOG_ERROR, host->who, "message '%s' lost: %s", m->name,
                         lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
            lua_settop(L, 0);
        }
        if (j.start_failed) { /* the state is replaced: what it did goes out first */
            sn_lua_broker_hold(L, 0);
            held = NULL;
            start_failed(a, n);
        } else if (sn_lua_broker_held(L)) { /* the clock only while something is held */
            double now = sn_clock_mono();
            if (!held_at) {
                held_at = now;
            } else if (now - held_at > HOLD_MAX_S) {
                sn_lua_broker_send(L);
                held_at = 0;
            }
        }
        sn_lua_worker_idle(worker);
        sn_msg_destroy(&m);
        sn_node_msg_done(n);
    }
    if (held)
        sn_lua_broker_hold(held, 0);
    if (sn_mailbox_yield(sn_actor_mailbox(a)))
        sn_node_reschedule(n, t);
    else
        sn_actor_release(&a); /* the run queue's reference */
}
