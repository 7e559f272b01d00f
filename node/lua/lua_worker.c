/* lua_worker: a job runs in a fresh env on the worker's reused state: it sees the preload
 * results and the submitter's starred names, and whatever it writes is gone with the env. */
#include "lua_worker.h"
#include "sn_clock.h"
#include "lua_restore.h"
#include "lua_sandbox.h"
#include "lua_shared.h"
#include "lua_state.h"
#include "sn_error.h"
#include "sn_jobs.h"
#include "sn_node.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sn_lua_worker {
    sn_lua_host host;
    lua_State *L;
    _Atomic size_t memory; /* the counting allocator's */
    char who[96];
    pthread_mutex_t busy_lock; /* the watchdog reads what this worker is on */
    double busy_since;         /* monotonic seconds; 0: idle */
    char busy_who[96];
    char busy_what[128];
};

void sn_lua_worker_busy(sn_lua_worker *w, const char *who, const char *what)
{
    if (!w)
        return;
    double now = sn_clock_mono();
    size_t wl = strnlen(who, sizeof w->busy_who - 1);
    size_t hl = what ? strnlen(what, sizeof w->busy_what - 1) : 0;
    pthread_mutex_lock(&w->busy_lock);
    w->busy_since = now;
    memcpy(w->busy_who, who, wl);
    w->busy_who[wl] = '\0';
    memcpy(w->busy_what, what ? what : "", hl);
    w->busy_what[hl] = '\0';
    pthread_mutex_unlock(&w->busy_lock);
}

void sn_lua_worker_idle(sn_lua_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->busy_lock);
    w->busy_since = 0;
    pthread_mutex_unlock(&w->busy_lock);
}

double sn_lua_worker_busy_for(void *ud, void *worker, char *who, size_t wholen, char *what,
                              size_t whatlen)
{
    (void)ud;
    sn_lua_worker *w = worker;
    pthread_mutex_lock(&w->busy_lock);
    double since = w->busy_since;
    snprintf(who, wholen, "%s", w->busy_who);
    snprintf(what, whatlen, "%s", w->busy_what);
    pthread_mutex_unlock(&w->busy_lock);
    return since > 0 ? sn_clock_mono() - since : 0;
}

static int seal(lua_State *L)
{
    sn_sandbox_seal(L);
    return 0;
}

void *sn_lua_worker_init(void *ud, const sn_vm_worker *conf)
{
    sn_lua_worker *w = calloc(1, sizeof *w);
    if (!w) {
        sn_log_write(conf->log, SN_LOG_ERROR, NULL, "worker %d: %s", conf->index,
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    snprintf(w->who, sizeof w->who, "worker-%d", conf->index);
    pthread_mutex_init(&w->busy_lock, NULL);
    sn_limits lim = sn_node_limits(conf->node, ""); /* "*" and the defaults */
    w->host = (sn_lua_host){
        .log = conf->log,
        .who = w->who,
        .stage = "",
        .node_name = conf->node_name,
        .start = conf->start,
        .node = conf->node,
        .shared = sn_node_shared(conf->node),
        .ctx = ud,
        .mem_used = &w->memory,
        .budget = lim.budget,
        .mem_warn = lim.memory_warn,
        .mem_cap = lim.memory_cap,
    };
    w->L = sn_lua_new(&w->host);
    if (w->L && sn_lua_run_preload(w->L, conf->preload, conf->preload_required) == SN_OK) {
        lua_pushcfunction(w->L, seal);
        if (sn_lua_pcall(w->L, 0, 0, "worker setup") == SN_OK) {
            if (sn_restore_save(w->L) == LUA_OK)
                return w;
            sn_log_write(conf->log, SN_LOG_ERROR, w->who, "worker setup: %s",
                         lua_tostring(w->L, -1));
        }
    }
    if (w->L)
        lua_close(w->L);
    w->L = NULL; /* this worker fails its jobs, with a log record each */
    return w;
}

void sn_lua_worker_fini(void *ud, void *worker)
{
    (void)ud;
    sn_lua_worker *w = worker;
    if (!w)
        return;
    if (w->L)
        lua_close(w->L);
    pthread_mutex_destroy(&w->busy_lock);
    free(w);
}

/* In protection: a fresh env, then fn(args...) from the job's snapshot. Returns fn's results. */
static int job_body(lua_State *L)
{
    sn_job *job = lua_touserdata(L, 1);
    lua_settop(L, 0);
    sn_sandbox_job_begin(L, job->policy, job->policy_len); /* 1: the env */
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1; /* made by this process */
    o.env_index = 1;
    char err[256];
    int n = 0;
    if (sn_snapshot_decode(L, job->data, job->len, &o, &n, err, sizeof err) != SN_OK)
        return luaL_error(L, "cannot unpack the job: %s", err);
    lua_call(L, n - 1, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/* The results of a thread.new function go to its creator's callback, last. An empty
 * payload says the function failed: the callback is then removed without a call. */
static void send_end(sn_node *n, lua_State *L, sn_job *job, int first, int count)
{
    sn_buf buf;
    sn_buf_init(&buf);
    if (count >= 0) {
        sn_snapshot_opts o;
        sn_snapshot_opts_init(&o);
        char err[256];
        if (sn_snapshot_encode(L, first, count, &o, &buf, err, sizeof err) != SN_OK) {
            sn_log_write(sn_node_log(n), SN_LOG_ERROR, sn_lua_host_of(L)->who,
                         "thread results cannot be sent: %s", err);
            sn_buf_reset(&buf);
        }
    }
    sn_msg *m = sn_msg_new(SN_MSG_THREAD_END, NULL, NULL, NULL, buf.data, buf.len);
    sn_buf_fini(&buf);
    if (m) {
        m->handle = job->handle;
        if (sn_node_post(n, job->owner, m, 1) != SN_OK)
            sn_msg_destroy(&m); /* the actor is gone: nobody waits */
    }
}

void sn_lua_worker_run_job(sn_task *t, void *worker)
{
    sn_job *job = sn_job_of_task(t);
    sn_lua_worker *w = worker;
    sn_node *n = w ? w->host.node : NULL;
    if (!w || !w->L) {
        if (w)
            sn_log_write(w->host.log, SN_LOG_ERROR, job->who, "job %llu not run: %s has no Lua state",
                         (unsigned long long)job->seq, w->who);
        if (n && job->handle)
            send_end(n, NULL, job, 0, -1);
        if (n)
            sn_node_job_ended(n, job, 0);
        return;
    }
    lua_State *L = w->L;
    snprintf(w->who, sizeof w->who, "%s/job-%llu", job->who, (unsigned long long)job->seq);
    w->host.job = job;
    w->host.actor = job->owner;
    w->host.stage = job->stage;
    w->host.budget = sn_node_limits(n, job->stage).budget; /* the submitter's budget */
    sn_lua_worker_busy(w, w->who, NULL);
    lua_pushcfunction(L, job_body);
    lua_pushlightuserdata(L, job);
    double rerun = 0;
    char what[64];
    snprintf(what, sizeof what, "%s %llu", job->handle ? "thread" : "job",
             (unsigned long long)job->seq);
    if (sn_lua_pcall(L, 1, LUA_MULTRET, what) == SN_OK) {
        int count = lua_gettop(L);
        if (job->handle)
            send_end(n, L, job, 1, count);
        else if (count >= 1 && lua_type(L, 1) == LUA_TNUMBER && lua_tonumber(L, 1) > 0)
            rerun = lua_tonumber(L, 1);
    } else if (job->handle) {
        send_end(n, L, job, 0, -1);
    }
    lua_settop(L, 0);
    sn_sandbox_job_end(L);
    if (sn_restore_apply(L) != LUA_OK) { /* out of memory: the next job may see this one's */
        sn_log_write(w->host.log, SN_LOG_ERROR, w->who, "cannot restore the library after a "
                     "job: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    sn_starred_forget(L);
    w->host.job = NULL;
    w->host.actor = 0;
    w->host.stage = "";
    snprintf(w->who, sizeof w->who, "worker");
    sn_lua_worker_idle(w);
    sn_node_job_ended(n, job, rerun);
}
