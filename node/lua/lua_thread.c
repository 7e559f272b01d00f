/* lua_thread: thread.new is stage.submit(0, ...) plus a handle; its values come back as
 * messages to the creator, so they run between the creator's callbacks, in order. */
#include "lua_thread.h"
#include "lua_sandbox.h"
#include "lua_host.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_jobs.h"
#include "sn_node.h"
#include "sn_send.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const char K_THREADS = 0; /* handle -> callback, in the creator's state */

static sn_node *node_of(lua_State *L, const char *what)
{
    sn_node *n = sn_lua_host_of(L)->node;
    if (!n)
        luaL_error(L, "%s: this state belongs to no node", what);
    return n;
}

lua_Integer sn_lua_thread_submit(lua_State *L, lua_Integer key, int fn, int arg_base,
                                 int want_handle)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_node *n = node_of(L, want_handle ? "thread.new" : "stage.submit");
    luaL_checktype(L, fn, LUA_TFUNCTION);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.arg_base = arg_base;
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    int rc = sn_snapshot_encode(L, fn, lua_gettop(L) - fn + 1, &o, &buf, err, sizeof err);
    if (rc != SN_OK) {
        sn_buf_fini(&buf);
        return luaL_error(L, "%s: %s", want_handle ? "thread.new" : "stage.submit", err);
    }
    sn_sandbox_push_starred(L);
    size_t plen;
    const char *policy = lua_tolstring(L, -1, &plen);
    uint64_t handle = want_handle ? sn_node_next_id(n) : 0;
    sn_job *job = sn_job_new((int64_t)key, host->actor, handle, buf.data, buf.len, policy, plen);
    sn_buf_fini(&buf);
    lua_pop(L, 1);
    if (!job)
        return luaL_error(L, "%s", sn_strerror(SN_ENOMEM));
    const char *who = host->job ? host->job->who : host->who;
    snprintf(job->who, sizeof job->who, "%s", who);
    snprintf(job->stage, sizeof job->stage, "%s", host->stage ? host->stage : "");
    sn_node_submit(n, job);
    return (lua_Integer)handle;
}

/* Stores {fn, n = count, extras...} for handle in the registry table at index threads: fn
 * at index fn, the extras fn+1..top. */
static void put_callback(lua_State *L, int threads, lua_Integer handle, int fn)
{
    int top = lua_gettop(L);
    lua_pushinteger(L, handle);
    sn_lua_pack_handler(L, fn, top);
    lua_rawset(L, threads);
}

/* to.waitfor(fn, extra...): registers fn, called as fn(extra..., v...) for each value list
 * the thread sends (as STAGE's thread_object.waitfor); to.waitfor(nil) removes it;
 * to.waitfor(extra...) replaces the extras of the registered fn. to:waitfor(...) works too.
 * Returns to.id, or nil when there was nothing to change. */
static int to_waitfor(lua_State *L)
{
    if (sn_lua_host_of(L)->job)
        return luaL_error(L, "to.waitfor: only the actor that created the thread can wait for it");
    lua_Integer handle = lua_tointeger(L, lua_upvalueindex(1));
    if (lua_type(L, 1) == LUA_TTABLE) { /* the colon form: the handle itself comes first */
        lua_getfield(L, 1, "waitfor");
        int self = lua_tocfunction(L, -1) == to_waitfor;
        lua_pop(L, 1);
        lua_getfield(L, 1, "id");
        self = self && lua_tointeger(L, -1) == handle;
        lua_pop(L, 1);
        if (self)
            lua_remove(L, 1);
    }
    if (lua_gettop(L) == 0)
        lua_pushnil(L); /* to.waitfor(): removes it, as to.waitfor(nil) */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_THREADS);
    lua_insert(L, 1); /* threads, args... */
    const int threads = 1;
    if (lua_isnil(L, 2)) {
        lua_pushinteger(L, handle);
        lua_pushnil(L);
        lua_rawset(L, threads);
        return 0;
    }
    if (lua_type(L, 2) == LUA_TFUNCTION) {
        lua_pushinteger(L, handle);
        if (lua_gettop(L) == 3 && lua_rawget(L, threads) == LUA_TTABLE) {
            /* a new fn alone keeps the extras given before, as STAGE */
            lua_getfield(L, -1, "n");
            int n = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
            luaL_checkstack(L, n + 4, "too many callback values");
            for (int i = 2; i <= n + 1; i++)
                lua_rawgeti(L, 3, i);
            lua_remove(L, 3);
        } else {
            lua_settop(L, lua_gettop(L) - 1);
        }
        put_callback(L, threads, handle, 2);
    } else { /* new extras for the registered fn */
        lua_pushinteger(L, handle);
        if (lua_rawget(L, threads) != LUA_TTABLE) {
            lua_pushnil(L); /* nothing registered: nil, as STAGE */
            return 1;
        }
        lua_rawgeti(L, -1, 1);
        lua_replace(L, -2); /* threads, extras..., fn */
        lua_insert(L, 2);
        put_callback(L, threads, handle, 2);
    }
    lua_pushinteger(L, handle);
    return 1;
}

/* thread.new(fn, ...) */
static int thread_new(lua_State *L)
{
    lua_Integer handle = sn_lua_thread_submit(L, 0, 1, 1, 1);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, handle);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, handle);
    lua_pushcclosure(L, to_waitfor, 1);
    lua_setfield(L, -2, "waitfor");
    return 1;
}

/* thread.signal(...): values for the creator's callback; only inside a thread.new function. */
static int thread_signal(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->job || !host->job->handle)
        return luaL_error(L, "thread.signal: called outside a function started by thread.new");
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    if (sn_snapshot_encode(L, 1, lua_gettop(L), &o, &buf, err, sizeof err) != SN_OK) {
        sn_buf_fini(&buf);
        return luaL_error(L, "thread.signal: %s", err);
    }
    sn_msg *m = sn_msg_new(SN_MSG_THREAD, NULL, NULL, NULL, buf.data, buf.len);
    sn_buf_fini(&buf);
    if (!m)
        return luaL_error(L, "thread.signal: %s", sn_strerror(SN_ENOMEM));
    m->handle = host->job->handle;
    int rc = sn_node_post(host->node, host->job->owner, m, 0);
    if (rc != SN_OK) {
        sn_msg_destroy(&m);
        char why[64];
        lua_pushboolean(L, 0);
        lua_pushstring(L, rc == SN_EFULL ? sn_send_why(rc, NULL, why, sizeof why)
                                         : "creator gone");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* thread.id: the OS thread running the code; thread.tick: wall-clock seconds since the
 * epoch, to the millisecond (STAGE's utimeNow() / 1000.0). */
static int thread_index(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "id") == 0) {
        lua_pushinteger(L, (lua_Integer)(uintptr_t)pthread_self());
        return 1;
    }
    if (k && strcmp(k, "tick") == 0) {
        lua_pushnumber(L, floor(sn_clock_seconds(CLOCK_REALTIME) * 1000.0) / 1000.0);
        return 1;
    }
    return 0;
}

void sn_thread_open(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_THREADS);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, thread_new);
    lua_setfield(L, -2, "new");
    lua_pushcfunction(L, thread_signal);
    lua_setfield(L, -2, "signal");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, thread_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "thread");
}

void sn_thread_deliver(lua_State *L, const sn_msg *m)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int end = m->kind == SN_MSG_THREAD_END;
    int base = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_THREADS);
    int threads = base + 1;
    lua_pushinteger(L, (lua_Integer)m->handle);
    int has_cb = lua_rawget(L, threads) == LUA_TTABLE;
    int entry = threads + 1;
    if (end) { /* the callback goes after this last call */
        lua_pushinteger(L, (lua_Integer)m->handle);
        lua_pushnil(L);
        lua_rawset(L, threads);
    }
    if (!has_cb || (end && m->len == 0)) {
        if (!has_cb)
            sn_log_write(host->log, SN_LOG_DEBUG, host->who,
                         "values of thread %llu dropped: no to.waitfor callback",
                         (unsigned long long)m->handle);
        lua_settop(L, base);
        return;
    }
    lua_getfield(L, entry, "n");
    int nextra = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, nextra + 8, "too many callback values");
    for (int i = 1; i <= nextra + 1; i++) /* fn, extras... */
        lua_rawgeti(L, entry, i);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1;
    char err[256];
    int n = 0;
    if (sn_snapshot_decode(L, m->data, m->len, &o, &n, err, sizeof err) != SN_OK) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "thread values lost: %s", err);
        lua_settop(L, base);
        return;
    }
    sn_lua_pcall(L, nextra + n, 0, "thread callback");
    lua_settop(L, base);
}
