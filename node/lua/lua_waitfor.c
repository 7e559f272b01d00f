/* lua_waitfor: handlers live in a registry table of the actor's state, id -> {fn, extras}.
 * A message is matched most specific id first (sn_target_next), then "@". */
#include "lua_waitfor.h"
#include "lua_signal.h"
#include "lua_host.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_cluster.h"
#include "sn_fcache.h"
#include "sn_jobs.h"
#include "sn_node.h"
#include "sn_snapshot.h"
#include "sn_target.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static const char K_HANDLERS = 0;
static const char K_WAITFOR = 0; /* the _WAITFOR table of this state */
static const char K_MATCHED = 0; /* the matched id of the message being handled */

static int waitfor_index(lua_State *L);

void sn_waitfor_open(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
    lua_createtable(L, 4, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, waitfor_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_WAITFOR);
}

/* The global _WAITFOR is the describing table while a handler runs (argument 1 true),
 * else nil, as in STAGE, whose scripts test `_WAITFOR ~= nil` to tell a message from a
 * direct call. The assignment goes through the env's __newindex (the name is made absent
 * first), so that the sandbox's snapshot layers learn of it like of a script's. */
static int assign_global(lua_State *L)
{
    int on = lua_toboolean(L, 1);
    lua_pushglobaltable(L);
    lua_pushliteral(L, "_WAITFOR");
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pushliteral(L, "_WAITFOR");
    if (on)
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_WAITFOR);
    else
        lua_pushnil(L);
    lua_settable(L, -3);
    return 0;
}

/* Never raises: it runs where a Lua error would leave host->msg pointing at a dead frame
 * (sn_waitfor_call). Out of memory, the name is left absent (nil). */
static void set_global(lua_State *L, int on)
{
    lua_pushcfunction(L, assign_global);
    lua_pushboolean(L, on);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        lua_pop(L, 1);
}

/* Registers fn (at index fn) with the extras fn+1..top under the id at index id. With no
 * extras, an id already registered keeps the extras it had (STAGE replaces them only when
 * given). */
static void put_handler(lua_State *L, int id, int fn)
{
    int top = lua_gettop(L), orig = top;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
    if (top == fn) {
        lua_pushvalue(L, id);
        if (lua_rawget(L, -2) == LUA_TTABLE) {
            lua_getfield(L, -1, "n");
            int n = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
            luaL_checkstack(L, n + 8, "too many handler values");
            int entry = lua_gettop(L);
            for (int i = 2; i <= n + 1; i++)
                lua_rawgeti(L, entry, i);
            lua_remove(L, entry);
            lua_remove(L, entry - 1); /* the handlers table: pushed again below */
            top = lua_gettop(L);
            lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, id);
    sn_lua_pack_handler(L, fn, top);
    lua_rawset(L, -3);
    lua_settop(L, orig);
}

/* In a job: the handler moves, as a snapshot, into the actor that submitted the job. */
static void move_handler(lua_State *L, int id, int fn)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.arg_base = fn - 1;
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    lua_pushvalue(L, id);
    lua_insert(L, fn); /* id, fn, extras... */
    int rc = sn_snapshot_encode(L, fn, lua_gettop(L) - fn + 1, &o, &buf, err, sizeof err);
    lua_remove(L, fn);
    if (rc != SN_OK) {
        sn_buf_fini(&buf);
        luaL_error(L, "stage.waitfor: %s", err);
    }
    sn_msg *m = sn_msg_new(SN_MSG_HANDLER, NULL, NULL, NULL, buf.data, buf.len);
    sn_buf_fini(&buf);
    if (!m)
        luaL_error(L, "stage.waitfor: %s", sn_strerror(SN_ENOMEM));
    if (sn_node_post(host->node, host->actor, m, 1) != SN_OK) {
        sn_msg_destroy(&m);
        luaL_error(L, "stage.waitfor: the submitting actor is gone");
    }
}

/* stage.waitfor(): a table of every registered id -> the table of its extra values. */
static int list_handlers(lua_State *L)
{
    if (sn_lua_host_of(L)->job)
        return luaL_error(L, "stage.waitfor(): a job has no handlers of its own");
    lua_newtable(L);
    int out = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
    for (lua_pushnil(L); lua_next(L, out + 1); lua_pop(L, 1)) {
        int entry = lua_gettop(L);
        lua_Integer n = (lua_getfield(L, entry, "n"), lua_tointeger(L, -1));
        lua_pop(L, 1);
        lua_pushvalue(L, entry - 1);
        lua_createtable(L, (int)n, 0);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, entry, i + 1);
            lua_rawseti(L, -2, i);
        }
        lua_rawset(L, out);
    }
    lua_settop(L, out);
    return 1;
}

/* Pushes an id of len letters and digits that no handler of L uses (STAGE's
 * stage.waitfor(length, fn): a random id of that length, at least 4). */
static void push_random_id(lua_State *L, lua_Integer len)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    sn_lua_host *host = sn_lua_host_of(L);
    char id[65];
    size_t n = len < 4 ? 4 : len > 64 ? 64 : (size_t)len;
    uint64_t x = (host->node ? sn_node_next_id(host->node) : 1) * 0x9E3779B97F4A7C15ull ^
                 (uint64_t)(sn_clock_mono() * 1e9) ^ (uint64_t)host->actor << 32;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
    for (;;) {
        for (size_t i = 0; i < n; i++) { /* xorshift64* */
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            id[i] = alnum[(x * 0x2545F4914F6CDD1Dull >> 33) % (sizeof alnum - 1)];
        }
        id[n] = '\0';
        if (lua_getfield(L, -1, id) == LUA_TNIL)
            break;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    lua_pushstring(L, id);
}

/* stage.waitfor(id, extra...) on a registered id: its extra values become extra..., as
 * STAGE. Returns the id, or nil when id has no handler. */
static int replace_extras(lua_State *L)
{
    if (sn_lua_host_of(L)->job)
        return luaL_error(L, "stage.waitfor: a job cannot change its actor's handlers");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) != LUA_TTABLE) {
        lua_pushnil(L);
        return 1;
    }
    lua_rawgeti(L, -1, 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_insert(L, 2); /* id, fn, extras... */
    put_handler(L, 1, 2);
    lua_settop(L, 1);
    return 1;
}

int sn_waitfor_lua(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int nargs = lua_gettop(L);
    if (nargs == 0)
        return list_handlers(L);
    if (lua_type(L, 1) == LUA_TNUMBER && lua_type(L, 2) == LUA_TFUNCTION) {
        push_random_id(L, lua_tointeger(L, 1)); /* stage.waitfor(length, fn, ...) */
        lua_replace(L, 1);
    } else if (lua_type(L, 1) == LUA_TFUNCTION) { /* stage.waitfor(fn, ...): an id of our own */
        char id[64];
        uint64_t n = host->node ? sn_node_next_id(host->node) : (uint64_t)lua_gettop(L);
        snprintf(id, sizeof id, "waitfor#%llu", (unsigned long long)n);
        lua_pushstring(L, id);
        lua_insert(L, 1);
        nargs++;
    }
    luaL_argcheck(L, lua_type(L, 1) == LUA_TSTRING, 1, "a handler id (string) or a function");
    if (nargs == 1) { /* query: fn and the table of extras, or nil */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
        lua_pushvalue(L, 1);
        if (lua_rawget(L, -2) != LUA_TTABLE)
            return 0;
        int entry = lua_gettop(L);
        lua_rawgeti(L, entry, 1);
        lua_Integer n = (lua_getfield(L, entry, "n"), lua_tointeger(L, -1));
        lua_pop(L, 1);
        lua_createtable(L, (int)n, 0);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, entry, i + 1);
            lua_rawseti(L, -2, i);
        }
        return 2;
    }
    if (lua_isnil(L, 2)) { /* unregister */
        if (host->job)
            return luaL_error(L, "stage.waitfor: a job cannot unregister its actor's handlers");
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, -3);
        return 0;
    }
    if (lua_type(L, 2) != LUA_TFUNCTION)
        return replace_extras(L);
    if (host->job)
        move_handler(L, 1, 2);
    else
        put_handler(L, 1, 2);
    lua_settop(L, 1);
    return 1;
}

void sn_waitfor_adopt(lua_State *L, const sn_msg *m)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1;
    char err[256];
    int n = 0, base = lua_gettop(L);
    if (sn_snapshot_decode(L, m->data, m->len, &o, &n, err, sizeof err) != SN_OK || n < 2) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "a handler from a job is lost: %s",
                     n < 2 ? "malformed" : err);
        lua_settop(L, base);
        return;
    }
    put_handler(L, base + 1, base + 2);
    lua_settop(L, base);
}

/* Pushes the handler entry (a table) of the most specific id matching msg, and the matched
 * id; returns 0 (pushing nothing) when none. */
static int find_handler(lua_State *L, const char *msg)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLERS);
    for (size_t len = strlen(msg); len; len = sn_target_next(msg, len)) {
        lua_pushlstring(L, msg, len);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TTABLE) {
            lua_insert(L, -2); /* entry, id */
            lua_remove(L, -3);
            return 1;
        }
        lua_pop(L, 2);
    }
    if (msg[0]) { /* STAGE's last resort: the handler "@" */
        lua_pushliteral(L, "@");
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TTABLE) {
            lua_insert(L, -2);
            lua_remove(L, -3);
            return 1;
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return 0;
}

void sn_waitfor_push_address(lua_State *L, const char *node, uint64_t actor, const char *stage,
                             const char *id)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, node);
    lua_setfield(L, -2, "node");
    lua_pushinteger(L, (lua_Integer)actor);
    lua_setfield(L, -2, "actor");
    lua_pushstring(L, stage);
    lua_setfield(L, -2, "stage");
    if (id) {
        lua_pushstring(L, id);
        lua_setfield(L, -2, "id");
    }
}

/* _WAITFOR is one table per state whose fields are made on first use from the message
 * being handled (host->msg, and the id that matched): handlers that never look at it pay
 * nothing. After each handler its fields are cleared. */
static int waitfor_index(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const sn_msg *m = host->msg;
    if (!m || !lua_isinteger(L, 2))
        return 0;
    const char *node = m->src_node && m->src_node[0] ? m->src_node
                       : host->node                      ? sn_node_name(host->node)
                                                         : "";
    switch (lua_tointeger(L, 2)) {
    case -1: lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MATCHED); break;
    case 0: lua_pushstring(L, m->name); break;
    case 1: sn_waitfor_push_address(L, node, m->src, m->src_stage, NULL); break;
    case 2:
        if (!m->reply)
            return 0;
        sn_waitfor_push_address(L, node, m->src, m->src_stage, m->reply);
        break;
    default: return 0;
    }
    lua_pushvalue(L, 2); /* cached for the rest of this handler */
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

/* Makes m (whose handler id matched at index matched) the message _WAITFOR describes. */
static void waitfor_begin(lua_State *L, const sn_msg *m, int matched)
{
    lua_pushvalue(L, matched);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_MATCHED);
    sn_lua_host_of(L)->msg = m;
    set_global(L, m != NULL);
}

static void waitfor_clear(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_WAITFOR);
    for (int i = -1; i <= 2; i++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, i);
    }
    lua_pop(L, 1);
}

/* Pushes fn and its extras from the entry at index entry; returns how many were pushed. */
static int push_call(lua_State *L, int entry)
{
    lua_rawgeti(L, entry, 1);
    lua_getfield(L, entry, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 8, "too many handler values");
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, entry, i + 1);
    return n + 1;
}

/* The receiver side of the function cache, remembering a hash it did not hold. */
typedef struct lookup_ctx {
    sn_fcache *fcache;
    unsigned char missed[16];
    int miss;
} lookup_ctx;

static char *fcache_lookup(void *ud, const unsigned char hash[16], size_t *len)
{
    lookup_ctx *x = ud;
    char *code = sn_fcache_lookup(x->fcache, hash, len);
    if (!code) {
        memcpy(x->missed, hash, 16);
        x->miss = 1;
    }
    return code;
}

static void fcache_store(void *ud, const unsigned char hash[16], const char *code, size_t len)
{
    lookup_ctx *x = ud;
    sn_fcache_store(x->fcache, hash, code, len);
}

/* What a handler's n results at first do, as STAGE (stage/lua.cpp, messageCallback): none
 * answer nothing, even a request; a request (=rid) gets them as its reply; any other
 * message from another actor of this node gets them back under its own id (an automatic
 * answer). The guard: an answer (a reply or an automatic answer) is never answered
 * automatically, so two handlers cannot answer each other's answers for ever. */
static void answer(lua_State *L, const sn_msg *m, const char *matched, int first, int n)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (host->replied || n == 0)
        return;
    if (m->reply) {
        sn_signal_reply(L, m, first, n);
        return;
    }
    if (!m->src || m->src == host->actor)
        return; /* from no actor (a lock grant), or from itself: its own handler again */
    if (m->src_node && m->src_node[0]) {
        sn_log_write(host->log, SN_LOG_DEBUG, host->who, "results of handler '%s' not sent "
                     "back to node %s: automatic answers stay within a node", matched,
                     m->src_node);
        return;
    }
    if (m->flags & SN_MSG_F_ANSWER) {
        sn_log_write(host->log, SN_LOG_WARN, host->who, "handler '%s' returned values for an "
                     "answer ('%s'): not sent back, an answer to an answer could loop for "
                     "ever (docs/lua-api.md, automatic answers)", matched, m->name);
        return;
    }
    sn_signal_answer(L, m, first, n);
}

void sn_waitfor_dispatch(lua_State *L, const sn_msg *m)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int base = lua_gettop(L);
    if (m->deadline && sn_clock_mono() > m->deadline) { /* a table target's timeout */
        sn_log_write(host->log, SN_LOG_DEBUG, host->who, "message '%s' dropped: its timeout "
                     "passed before it was handled", m->name);
        if (m->reply) {
            char why[32];
            sn_signal_reply_error(L, m, sn_error_text(SN_ETIMEDOUT, NULL, why, sizeof why));
        }
        return;
    }
    if (!find_handler(L, m->name)) {
        sn_log_write(host->log, SN_LOG_DEBUG, host->who, "no handler for '%s' (nor '@'): "
                     "dropped", m->name);
        if (m->reply) {
            char why[600];
            snprintf(why, sizeof why, "no handler for '%s'", m->name);
            sn_signal_reply_error(L, m, why);
        }
        lua_settop(L, base);
        return;
    }
    int entry = base + 1, matched = base + 2;
    int fn = lua_gettop(L) + 1;
    push_call(L, entry);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = !(m->flags & SN_MSG_F_UNTRUSTED); /* the cluster decides per peer */
    lookup_ctx lx = {.fcache = host->ctx ? host->ctx->fcache : NULL};
    sn_snapshot_fcache fc = {.lookup = fcache_lookup, .store = fcache_store, .ud = &lx};
    if (m->src_node && m->src_node[0] && lx.fcache) /* from another node: the function cache */
        o.fcache = &fc;
    char err[256];
    int nvals = 0;
    if (sn_snapshot_decode(L, m->data, m->len, &o, &nvals, err, sizeof err) != SN_OK) {
        /* a peer decides how often this happens: one line a second, with the count */
        double now = sn_clock_mono();
        if (now - host->drop_logged_at >= 1.0) {
            sn_log_write(host->log, SN_LOG_ERROR, host->who, "message '%s' dropped: %s",
                         m->name, err);
            if (host->drops_unlogged)
                sn_log_write(host->log, SN_LOG_ERROR, host->who, "%u more messages dropped "
                             "in the last second, not logged one by one", host->drops_unlogged);
            host->drop_logged_at = now;
            host->drops_unlogged = 0;
        } else {
            host->drops_unlogged++;
        }
        if (lx.miss && host->ctx && host->ctx->cluster) /* sent in full next time */
            sn_cluster_code_miss(host->ctx->cluster, m->src_node, lx.missed);
        if (m->reply)
            sn_signal_reply_error(L, m, err);
        lua_settop(L, base);
        return;
    }
    host->replied = 0;
    waitfor_begin(L, m, matched);
    char what[600];
    snprintf(what, sizeof what, "handler '%s'", lua_tostring(L, matched));
    int nargs = lua_gettop(L) - fn;
    if (sn_lua_pcall(L, nargs, LUA_MULTRET, what) == SN_OK)
        answer(L, m, lua_tostring(L, matched), fn, lua_gettop(L) - fn + 1);
    else if (m->reply && !host->replied)
        sn_signal_reply_error(L, m, "the handler failed");
    host->msg = NULL;
    waitfor_clear(L);
    set_global(L, 0);
    lua_settop(L, base);
}

int sn_waitfor_call(lua_State *L, const char *msg, int first)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int nvals = lua_gettop(L) - first + 1;
    int base = lua_gettop(L);
    if (!find_handler(L, msg))
        return luaL_error(L, "stage.signal: no handler for '%s'", msg);
    int entry = base + 1, matched = base + 2;
    /* a synchronous call may happen inside a handler: _WAITFOR describes the inner one,
     * then the outer one again, also when the inner one fails (self lives in this frame,
     * so no error may leave it with host->msg still pointing here) */
    const sn_msg *outer = host->msg;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MATCHED);
    int outer_matched = lua_gettop(L);
    sn_msg self = {.kind = SN_MSG_SIGNAL, .src = host->actor, .name = msg, .src_node = "",
                   .src_stage = host->stage ? host->stage : ""};
    int fn = lua_gettop(L) + 1;
    push_call(L, entry);
    for (int i = 0; i < nvals; i++)
        lua_pushvalue(L, first + i);
    waitfor_clear(L);
    waitfor_begin(L, &self, matched);
    int rc = lua_pcall(L, lua_gettop(L) - fn, LUA_MULTRET, 0);
    waitfor_clear(L);
    waitfor_begin(L, outer, outer_matched);
    if (rc == LUA_ERRMEM && host->mem_cap)
        lua_newuserdata(L, host->mem_cap + 1); /* refused by the cap: the same memory error
                                                  (a memory kill), not a plain one */
    if (rc != LUA_OK)
        return lua_error(L); /* the handler's error object, unchanged */
    return lua_gettop(L) - fn + 1;
}
