/* lua_timer: the loop thread only counts time; the task runs as a message in its actor, so it
 * never overlaps the actor's handlers. */
#include "lua_timer.h"
#include "lua_host.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_jobs.h"
#include "sn_msg.h"
#include "sn_snapshot.h"

#include <stdio.h>

#include <lauxlib.h>

static const char K_TASKS = 0; /* id -> {fn, args..., n} */

void sn_lua_timer_open(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_TASKS);
}

static lua_Integer task_id(lua_State *L, int idx)
{
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "id");
        lua_Integer id = lua_tointeger(L, -1);
        lua_pop(L, 1);
        return id;
    }
    return luaL_checkinteger(L, idx);
}

static sn_lua_host *timer_host(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || !host->actor)
        luaL_error(L, "stage.addtask: only an actor or its jobs can arm a timer");
    return host;
}

/* In a job (thread.new, stage.submit): the timer is the owning actor's, as in STAGE, where
 * the task joins the stage's queue: (ms, fn, args...) travel to the actor in an
 * SN_MSG_TIMER message with a payload, and the actor arms them. Pushes the handle. */
static int arm_from_job(lua_State *L, sn_lua_host *host, double ms, int fn)
{
    lua_pushnumber(L, ms);
    lua_insert(L, fn);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.arg_base = fn;
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    if (sn_snapshot_encode(L, fn, lua_gettop(L) - fn + 1, &o, &buf, err, sizeof err) != SN_OK) {
        sn_buf_fini(&buf);
        return luaL_error(L, "stage.addtask: %s", err);
    }
    uint64_t id = sn_node_next_id(host->node);
    sn_msg *m = sn_msg_new(SN_MSG_TIMER, NULL, NULL, NULL, buf.data, buf.len);
    sn_buf_fini(&buf);
    if (!m)
        return luaL_error(L, "stage.addtask: %s", sn_strerror(SN_ENOMEM));
    m->handle = id;
    int rc = sn_node_post(host->node, host->job->owner, m, 1);
    if (rc != SN_OK) {
        sn_msg_destroy(&m);
        return luaL_error(L, "stage.addtask: the actor that owns this job is gone (%s)",
                          sn_strerror(rc));
    }
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)id);
    lua_setfield(L, -2, "id");
    return 1;
}

/* Arms fn (at index fn, its arguments after it up to the top) after ms; pushes the handle. */
static void arm_new(lua_State *L, sn_lua_host *host, double ms, int fn)
{
    int top = lua_gettop(L);
    uint64_t id = sn_node_next_id(host->node);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    lua_pushinteger(L, (lua_Integer)id);
    lua_createtable(L, top - fn + 1, 1);
    for (int i = fn; i <= top; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - fn + 1);
    }
    lua_pushinteger(L, top - fn + 1);
    lua_setfield(L, -2, "n");
    lua_rawset(L, -3);
    lua_pop(L, 1);
    sn_node_timer_arm(host->node, id, host->actor, ms);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)id);
    lua_setfield(L, -2, "id");
}

/* stage.addtask(task, nil | ms [, fn] | fn): cancels, re-arms after ms (a new timer id,
 * written back into a table handle, so that a run already queued under the old id is
 * dropped), and/or replaces the function (its arguments stay). True when the task was
 * armed by this actor and still pending, else false. */
static int change_task(lua_State *L, sn_lua_host *host)
{
    lua_Integer id = task_id(L, 1);
    int has_second = !lua_isnone(L, 2);
    lua_settop(L, 3);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    int tasks = lua_gettop(L);
    lua_pushinteger(L, id);
    if (lua_rawget(L, tasks) != LUA_TTABLE) { /* not armed by this actor, or over */
        lua_pushboolean(L, 0);
        return 1;
    }
    int entry = lua_gettop(L);
    int fn = 0;
    if (!has_second) { /* only asks whether it is pending */
        lua_pushboolean(L, 1);
        return 1;
    }
    if (lua_isnil(L, 2)) {
        lua_pushinteger(L, id);
        lua_pushnil(L);
        lua_rawset(L, tasks);
        sn_node_timer_cancel(host->node, (uint64_t)id);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Number ms = lua_tonumber(L, 2);
        luaL_argcheck(L, ms >= 0, 2, "a delay in ms, not negative");
        if (!lua_isnoneornil(L, 3)) {
            luaL_checktype(L, 3, LUA_TFUNCTION);
            fn = 3;
        }
        uint64_t nid = sn_node_next_id(host->node);
        sn_node_timer_cancel(host->node, (uint64_t)id);
        lua_pushinteger(L, id);
        lua_pushnil(L);
        lua_rawset(L, tasks);
        lua_pushinteger(L, (lua_Integer)nid);
        lua_pushvalue(L, entry);
        lua_rawset(L, tasks);
        if (lua_istable(L, 1)) {
            lua_pushinteger(L, (lua_Integer)nid);
            lua_setfield(L, 1, "id");
        }
        sn_node_timer_arm(host->node, nid, host->actor, ms);
    } else {
        luaL_argcheck(L, lua_isfunction(L, 2), 2, "nil, a delay in ms, or a function");
        fn = 2;
    }
    if (fn) {
        lua_pushvalue(L, fn);
        lua_rawseti(L, entry, 1);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stage.addtask(ms, fn, ...), stage.addtask(fn, ...) (ms = 0), stage.addtask(task, ...). */
int sn_lua_timer_lua(lua_State *L)
{
    sn_lua_host *host = timer_host(L);
    if (lua_istable(L, 1) || (lua_gettop(L) >= 2 && lua_isinteger(L, 1) && !lua_isfunction(L, 2))) {
        if (host->job)
            return luaL_error(L, "stage.addtask: a job arms timers for its actor, but only "
                              "the actor changes or cancels them");
        return change_task(L, host);
    }
    lua_Number ms = 0;
    int fn = 1;
    if (!lua_isfunction(L, 1)) {
        ms = luaL_checknumber(L, 1);
        luaL_argcheck(L, ms >= 0, 1, "a delay in ms, not negative");
        luaL_checktype(L, 2, LUA_TFUNCTION);
        fn = 2;
    }
    if (host->job)
        return arm_from_job(L, host, ms, fn);
    arm_new(L, host, ms, fn);
    return 1;
}

int sn_lua_timer_idle(lua_State *L, int fn)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || !host->actor || host->job)
        return 0;
    lua_pushvalue(L, fn);
    arm_new(L, host, 0, lua_gettop(L));
    lua_pop(L, 2);
    return 1;
}

/* A timer a job armed for this actor: (ms, fn, args...) in the payload. */
static void adopt(lua_State *L, const sn_msg *m)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1; /* made by this process */
    char err[256];
    int n = 0, base = lua_gettop(L);
    if (sn_snapshot_decode(L, m->data, m->len, &o, &n, err, sizeof err) != SN_OK || n < 2 ||
        !lua_isnumber(L, base + 1) || !lua_isfunction(L, base + 2)) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "a timer from a job is lost: %s",
                     n < 2 ? "malformed" : err);
        lua_settop(L, base);
        return;
    }
    double ms = lua_tonumber(L, base + 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    lua_pushinteger(L, (lua_Integer)m->handle);
    lua_createtable(L, n - 1, 1);
    for (int i = 2; i <= n; i++) {
        lua_pushvalue(L, base + i);
        lua_rawseti(L, -2, i - 1);
    }
    lua_pushinteger(L, n - 1);
    lua_setfield(L, -2, "n");
    lua_rawset(L, -3);
    lua_settop(L, base);
    sn_node_timer_arm(host->node, m->handle, host->actor, ms);
}

void sn_lua_timer_message(lua_State *L, const sn_msg *m)
{
    if (m->len)
        adopt(L, m);
    else
        sn_lua_timer_fire(L, m->handle);
}

void sn_lua_timer_fire(lua_State *L, uint64_t task)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int base = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    int tasks = base + 1;
    lua_pushinteger(L, (lua_Integer)task);
    if (lua_rawget(L, tasks) != LUA_TTABLE) { /* cancelled */
        lua_settop(L, base);
        return;
    }
    int entry = base + 2;
    lua_getfield(L, entry, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 4, "timer arguments");
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, entry, i);
    double again = 0;
    if (sn_lua_pcall(L, n - 1, 1, "timer") == SN_OK && lua_type(L, -1) == LUA_TNUMBER)
        again = lua_tonumber(L, -1);
    lua_pushinteger(L, (lua_Integer)task);
    int alive = lua_rawget(L, tasks) == LUA_TTABLE; /* not cancelled by its own run */
    lua_pop(L, 1);
    if (again > 0 && alive) {
        sn_node_timer_arm(host->node, task, host->actor, again);
    } else {
        lua_pushinteger(L, (lua_Integer)task);
        lua_pushnil(L);
        lua_rawset(L, tasks);
    }
    lua_settop(L, base);
}
