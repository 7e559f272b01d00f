/* lua_stage: the `stage` table; each function lives in the module of its job. */
#include "lua_stage.h"
#include "lua_load.h"
#include "lua_signal.h"
#include "lua_host.h"
#include "lua_thread.h"
#include "lua_timer.h"
#include "lua_waitfor.h"
#include "sn_error.h"
#include "sn_map.h"
#include "sn_node.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static const char K_SUBMIT_SCRIPT = 0; /* the job that runs a script by name */

/* What a job runs for stage.submit(key, "file+name", ...): STAGE's dofile: the script's
 * value, called with the arguments when it is a function. */
static const char submit_script[] =
    "local name = ...\n"
    "local v = stage.load(name)\n"
    "if type(v) == 'function' then return v(select(2, ...)) end\n"
    "return v\n";

/* A string key: any two equal strings give the same non-zero key (the placement hash of
 * sn_map.h, halved to stay a positive lua_Integer). */
static lua_Integer string_key(const char *s, size_t len)
{
    uint64_t h = sn_map_hash_more(SN_MAP_HASH_PLACEMENT, s, len);
    lua_Integer k = (lua_Integer)(h >> 1);
    return k ? k : 1;
}

/* stage.submit([key,] fn | "file+name", ...): runs fn(...) (or the script's value) on a
 * worker; jobs with the same non-zero key never overlap. The key is a number (0: none), or
 * a string followed by a function; without one, the key is 0 (as STAGE's). */
static int stage_submit(lua_State *L)
{
    lua_Integer key = 0;
    int fn = 1;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        key = luaL_checkinteger(L, 1);
        fn = 2;
    } else if (lua_type(L, 1) == LUA_TSTRING && lua_isfunction(L, 2)) {
        size_t len;
        const char *k = lua_tolstring(L, 1, &len);
        key = string_key(k, len);
        fn = 2;
    } else if (!lua_isfunction(L, 1) && lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L, "stage.submit: the key must be a number or a string, not %s "
                          "(stage.submit([key,] fn | \"file+name\", ...))", luaL_typename(L, 1));
    }
    if (lua_type(L, fn) == LUA_TSTRING) { /* a script by name: the name is the first arg */
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_SUBMIT_SCRIPT) != LUA_TFUNCTION) {
            lua_pop(L, 1);
            if (luaL_loadbufferx(L, submit_script, sizeof submit_script - 1, "=stage.submit",
                                 "t") != LUA_OK)
                return lua_error(L);
            lua_pushvalue(L, -1);
            lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SUBMIT_SCRIPT);
        }
        lua_insert(L, fn);
    } else if (!lua_isfunction(L, fn)) {
        return luaL_error(L, "stage.submit: expected a function or a script name, not %s",
                          luaL_typename(L, fn));
    }
    sn_lua_thread_submit(L, key, fn, fn, 0);
    lua_pushboolean(L, 1);
    return 1;
}

/* stage.once(key, fn): runs fn the first time key is seen in the node: true, fn's results;
 * false afterwards. stage.once(key, nil) forgets key. Raises when the node's once_keys limit
 * (or memory) leaves no room for a new key, rather than answer a false "seen". */
static int stage_once(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const char *key = luaL_checkstring(L, 1);
    if (!host->node)
        return luaL_error(L, "stage.once: this state belongs to no node");
    int first = 0;
    if (lua_isnoneornil(L, 2)) {
        sn_node_once(host->node, key, 1, &first);
        return 0;
    }
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int rc = sn_node_once(host->node, key, 0, &first);
    if (rc == SN_ELIMIT)
        return luaL_error(L, "stage.once: the node remembers at most %d keys (once_keys); raise "
                          "the limit with --set once_keys=N, or forget keys with "
                          "stage.once(key, nil)", (int)sn_node_once_keys(host->node));
    if (rc != SN_OK)
        return luaL_error(L, "stage.once: cannot record key '%s': %s", key, sn_strerror(rc));
    if (!first) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_settop(L, 2);
    lua_pushboolean(L, 1);
    lua_insert(L, 2);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/* stage.spawn(sid, script_or_fn, ...): a new actor of sid on this node ("node/sid" names the
 * node); returns its address {node=, actor=, stage=}. */
static int stage_spawn(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node)
        return luaL_error(L, "stage.spawn: this state belongs to no node");
    const char *sid = luaL_checkstring(L, 1);
    const char *slash = strchr(sid, '/');
    const char *me = sn_node_name(host->node);
    if (slash) {
        if ((size_t)(slash - sid) != strlen(me) || strncmp(sid, me, (size_t)(slash - sid)) != 0) {
            lua_pushlstring(L, sid, (size_t)(slash - sid));
            const char *who = lua_pushfstring(L, "node '%s'", lua_tostring(L, -1));
            char why[600];
            return luaL_error(L, "stage.spawn: %s",
                              sn_error_text(SN_ENOROUTE, who, why, sizeof why));
        }
        sid = slash + 1;
    }
    if (!*sid)
        return luaL_error(L, "stage.spawn: empty stage id");
    uint64_t id = 0;
    int rc;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *script = lua_tostring(L, 2);
        if (access(script, R_OK) != 0)
            return luaL_error(L, "stage.spawn: cannot read '%s'", script);
        rc = sn_node_spawn(host->node, sid, script, NULL, 0, &id);
    } else {
        luaL_checktype(L, 2, LUA_TFUNCTION);
        sn_snapshot_opts o;
        sn_snapshot_opts_init(&o);
        o.arg_base = 2;
        sn_buf buf;
        sn_buf_init(&buf);
        char err[256];
        if (sn_snapshot_encode(L, 2, lua_gettop(L) - 1, &o, &buf, err, sizeof err) != SN_OK) {
            sn_buf_fini(&buf);
            return luaL_error(L, "stage.spawn: %s", err);
        }
        rc = sn_node_spawn(host->node, sid, NULL, buf.data, buf.len, &id);
        sn_buf_fini(&buf);
    }
    if (rc != SN_OK)
        return luaL_error(L, "stage.spawn: %s", sn_strerror(rc));
    sn_waitfor_push_address(L, me, id, sid, NULL);
    return 1;
}

/* stage.mailbox(): the calling actor's mailbox: messages queued now, and the most ever. */
static int stage_mailbox(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    size_t len, peak;
    if (!host->node || sn_node_mailbox(host->node, host->actor, &len, &peak) != SN_OK)
        return luaL_error(L, "stage.mailbox: no actor here");
    lua_pushinteger(L, (lua_Integer)len);
    lua_pushinteger(L, (lua_Integer)peak);
    return 2;
}

/* stage.exit(): stops the node in order, as SIGTERM does (STAGE's stage.exit signals its
 * process group to quit). The caller goes on; every actor finishes the message it is on, no
 * new one starts, and the node exits 0. Arguments are ignored, as in STAGE. */
static int stage_exit(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_log_write(host->log, SN_LOG_WARN, host->who, "stage.exit: stopping the node");
    if (!host->node)
        return luaL_error(L, "stage.exit: this state belongs to no node");
    if (sn_node_exit(host->node) != SN_OK)
        return luaL_error(L, "stage.exit: %s", sn_strerror(SN_ENOMEM));
    return 0;
}

/* What a main script returns, as STAGE's boot takes it: a function is the IDLE function (a
 * timer run at once, re-armed by the ms it returns); a table's functions are the handlers
 * of their string keys, as stage.waitfor(key, fn). Other values are ignored. */
static int main_result(lua_State *L)
{
    if (lua_isfunction(L, 1)) {
        sn_lua_timer_idle(L, 1);
        return 0;
    }
    if (!lua_istable(L, 1) || !sn_lua_host_of(L)->actor)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
            lua_pushcfunction(L, sn_waitfor_lua);
            lua_pushvalue(L, -3);
            lua_pushvalue(L, -3);
            lua_call(L, 2, 0);
        }
        lua_pop(L, 1);
    }
    return 0;
}

void sn_stage_open(lua_State *L)
{
    sn_lua_set_main_hook(L, main_result);
    static const luaL_Reg fns[] = {
        {"submit", stage_submit},   {"waitfor", sn_waitfor_lua}, {"signal", sn_signal_lua},
        {"addtask", sn_lua_timer_lua}, {"once", stage_once},      {"load", sn_load_lua},
        {"require", sn_require_lua}, {"call", sn_call_lua},      {"spawn", stage_spawn},
        {"mailbox", stage_mailbox}, {"exit", stage_exit},
        {NULL, NULL},
    };
    sn_waitfor_open(L);
    sn_lua_timer_open(L);
    sn_load_open(L);
    luaL_newlib(L, fns);
    lua_setglobal(L, "stage");
}
