/* lua_signal: a signal's values are encoded once, then handed to the runtime's one send
 * path (sn_send_route), which picks local actors or other nodes. For another node, values
 * with functions are encoded again through the function cache (encode_for). */
#include "lua_signal.h"
#include "lua_builtin.h"
#include "lua_curl.h"
#include "lua_host.h"
#include "lua_waitfor.h"
#include "sn_clock.h"
#include "sn_cluster.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_router.h"
#include "sn_send.h"
#include "sn_snapshot.h"
#include "sn_target.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encodes the values first..top into buf; raises naming the bad value's path. */
static void encode_values(lua_State *L, int first, int arg_base, sn_buf *buf, const char *what)
{
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.arg_base = arg_base;
    o.functions = &sn_lua_host_of(L)->functions;
    char err[256];
    int n = lua_gettop(L) - first + 1;
    if (sn_snapshot_encode(L, first, n < 0 ? 0 : n, &o, buf, err, sizeof err) != SN_OK) {
        sn_buf_fini(buf);
        luaL_error(L, "%s: %s", what, err);
    }
}

static void count_out(sn_lua_host *host)
{
    if (host->counts)
        sn_stats_sent(sn_node_stats(host->node), host->counts);
    else
        sn_stats_count(sn_node_stats(host->node), SN_COUNT_OUT, host->stage ? host->stage : "",
                       NULL);
}

/* Queues one answer (a SIGNAL message marked SN_MSG_F_ANSWER); returns the node's result
 * (SN_OK, SN_EFULL, SN_ENOENT, ...). */
static int post(lua_State *L, uint64_t to, const char *msg, const char *reply, const sn_buf *buf,
                int force)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, msg, reply, host->stage, buf->data, buf->len);
    if (!m)
        return SN_ENOMEM;
    m->src = host->actor;
    m->flags |= SN_MSG_F_ANSWER; /* every post here answers: replies, errors, automatic */
    int rc = sn_node_post(host->node, to, m, force);
    if (rc != SN_OK)
        sn_msg_destroy(&m);
    else
        count_out(host);
    return rc;
}

/* The sender side of the function cache, for one peer. */
typedef struct peer_cache {
    sn_cluster *c;
    const char *node;
} peer_cache;

static int peer_knows(void *ud, const unsigned char hash[16])
{
    peer_cache *p = ud;
    return sn_cluster_knows(p->c, p->node, hash);
}

static void peer_sent(void *ud, const unsigned char hash[16])
{
    peer_cache *p = ud;
    sn_cluster_sent_code(p->c, p->node, hash);
}

/* What encode_for needs: the state holding the values (at 2..top) and the cluster. */
typedef struct remote_enc {
    lua_State *L;
    sn_cluster *c;
} remote_enc;

/* sn_send's encode: values with functions are encoded again for node: bytecode it holds
 * goes as a hash. */
static int encode_for(void *ud, const char *node, sn_buf *out)
{
    remote_enc *e = ud;
    if (!e->c || !sn_lua_host_of(e->L)->functions)
        return SN_ENOENT; /* the plain payload does */
    peer_cache pc = {e->c, node};
    sn_snapshot_fcache fc = {.known = peer_knows, .sent = peer_sent, .ud = &pc};
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.fcache = &fc;
    char err[256];
    return sn_snapshot_encode(e->L, 2, lua_gettop(e->L) - 1, &o, out, err, sizeof err);
}

static sn_cluster *cluster_of(sn_lua_host *host)
{
    return host->ctx ? host->ctx->cluster : NULL;
}

/* Sends (nil, text) to the handler rid of actor to. */
static void send_error(lua_State *L, uint64_t to, const char *rid, const char *text)
{
    lua_pushnil(L);
    lua_pushstring(L, text);
    sn_buf buf;
    sn_buf_init(&buf);
    encode_values(L, lua_gettop(L) - 1, 1, &buf, "reply");
    lua_pop(L, 2);
    post(L, to, rid, NULL, &buf, 1);
    sn_buf_fini(&buf);
}

/* The reply goes back over the wire when the request came from another node. */
static int remote_reply(lua_State *L, const sn_msg *m, int status, const char *text,
                        const sn_buf *buf)
{
    if (!m->src_node || !m->src_node[0])
        return 0;
    sn_lua_host *host = sn_lua_host_of(L);
    sn_cluster *c = cluster_of(host);
    if (c) {
        sn_cluster_reply(c, m, host->actor, host->stage, status, text, buf ? buf->data : NULL,
                         buf ? buf->len : 0);
        count_out(host);
    }
    return 1;
}

void sn_signal_reply(lua_State *L, const sn_msg *m, int first, int n)
{
    sn_buf buf;
    sn_buf_init(&buf);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    char err[256];
    if (sn_snapshot_encode(L, first, n, &o, &buf, err, sizeof err) != SN_OK) {
        sn_buf_fini(&buf);
        sn_signal_reply_error(L, m, err);
        return;
    }
    if (!remote_reply(L, m, 0, NULL, &buf))
        post(L, m->src, m->reply, NULL, &buf, 1);
    sn_buf_fini(&buf);
}

void sn_signal_answer(lua_State *L, const sn_msg *m, int first, int n)
{
    sn_buf buf;
    sn_buf_init(&buf);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    char err[256];
    sn_lua_host *host = sn_lua_host_of(L);
    if (sn_snapshot_encode(L, first, n, &o, &buf, err, sizeof err) != SN_OK) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "automatic answer to '%s' not sent: "
                     "%s", m->name, err);
    } else if (post(L, m->src, m->name, NULL, &buf, 1) != SN_OK) {
        sn_log_write(host->log, SN_LOG_DEBUG, host->who, "automatic answer to '%s' not sent: "
                     "the sender is gone", m->name);
    }
    sn_buf_fini(&buf);
}

void sn_signal_reply_error(lua_State *L, const sn_msg *m, const char *text)
{
    if (!remote_reply(L, m, SN_WIRE_FAILED, text, NULL))
        send_error(L, m->src, m->reply, text);
}

/* stage.signal(nil, ...): answers the message being handled: its reply when it asked for
 * one (=rid), else, as STAGE, an answer under the message's own id to the sending actor;
 * not an answer, though (the loop guard, see answer() in lua_waitfor.c). */
static int reply_now(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const sn_msg *m = host->msg;
    if (!m || (!m->reply && (m->flags & SN_MSG_F_ANSWER))) /* an answer asks for none */
        return luaL_error(L, "stage.signal(nil, ...): there is no message asking for a reply");
    if (m->reply) {
        sn_signal_reply(L, m, 2, lua_gettop(L) - 1);
    } else {
        if (!m->src || m->src == host->actor)
            return luaL_error(L, "stage.signal(nil, ...): message '%s' %s: there is no one to "
                                 "answer", m->name, m->src ? "came from this actor itself"
                                                           : "has no sender");
        if (m->src_node && m->src_node[0])
            return luaL_error(L, "stage.signal(nil, ...): message '%s' came from node %s "
                                 "without asking for a reply (=rid): it cannot be answered",
                              m->name, m->src_node);
        sn_signal_answer(L, m, 2, lua_gettop(L) - 1);
    }
    host->replied = 1;
    lua_pushinteger(L, 1);
    return 1;
}

static int result(lua_State *L, int queued, const char *why)
{
    lua_pushinteger(L, queued);
    if (queued || !why)
        return 1;
    lua_pushstring(L, why);
    return 2;
}

static int locks(lua_State *L, const sn_target *t)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int rc;
    if (t->mode == SN_TARGET_LOCK) {
        sn_buf buf;
        sn_buf_init(&buf);
        encode_values(L, 2, 2, &buf, "stage.signal");
        rc = sn_node_lock(host->node, SN_LOCK_ACQUIRE, t->lock, host->actor, t->msg, buf.data,
                          buf.len, 0);
        sn_buf_fini(&buf);
    } else if (t->mode == SN_TARGET_EXTEND) {
        double ms = luaL_checknumber(L, 2);
        rc = sn_node_lock(host->node, SN_LOCK_EXTEND, t->lock, host->actor, t->msg, NULL, 0, ms);
    } else {
        rc = sn_node_lock(host->node, SN_LOCK_RELEASE, t->lock, host->actor, t->msg, NULL, 0, 0);
    }
    if (rc == SN_OK)
        return result(L, 1, NULL);
    return result(L, 0, rc == SN_ENOENT ? "not the holder of the lock"
                        : rc == SN_EFULL ? "too many waiters for the lock" : sn_strerror(rc));
}

/* What a table target {target, addr, timeout} adds to its target string. */
typedef struct target_extras {
    double deadline; /* sn_clock_mono() seconds; 0: none */
    uint64_t actor;  /* the addressed actor; 0: routed as the string says */
    char stage[256]; /* the addressed actor's stage, for "no route to" */
} target_extras;

/* STAGE's stage.signal({target, addr, timeout}, ...): [1] the target string; [2] and [3]
 * each a timeout in ms (the message is dropped if not handled by then) or an address
 * {node=, actor=, stage=} (as _WAITFOR[1] or stage.spawn gives) of an actor of this node.
 * Replaces the table at index 1 with the target string. */
static void read_table_target(lua_State *L, target_extras *x)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (lua_rawgeti(L, 1, 1) != LUA_TSTRING)
        luaL_error(L, "stage.signal: a table target holds its target string at [1], got %s",
                   luaL_typename(L, -1));
    for (int k = 2; k <= 3; k++) {
        int type = lua_rawgeti(L, 1, k);
        if (type == LUA_TNUMBER) {
            double ms = lua_tonumber(L, -1);
            if (ms > 0)
                x->deadline = sn_clock_mono() + ms / 1000.0;
        } else if (type == LUA_TTABLE) {
            lua_getfield(L, -1, "node");
            const char *node = lua_tostring(L, -1);
            const char *me = sn_node_name(host->node);
            if (node && node[0] && strcmp(node, me) != 0)
                luaL_error(L, "stage.signal: table target [%d]: the address is on node '%s'; "
                              "only actors of this node can be addressed", k, node);
            lua_getfield(L, -2, "actor");
            lua_Integer actor = lua_tointeger(L, -1);
            if (actor <= 0)
                luaL_error(L, "stage.signal: table target [%d]: an address needs its actor "
                              "(a positive integer)", k);
            x->actor = (uint64_t)actor;
            lua_getfield(L, -3, "stage");
            snprintf(x->stage, sizeof x->stage, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1)
                                                                          : "");
            lua_pop(L, 3);
        } else if (type != LUA_TNIL) {
            luaL_error(L, "stage.signal: table target [%d]: expected a timeout (ms) or an "
                          "address {node=, actor=, stage=}, got %s", k, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    lua_replace(L, 1);
}

int sn_signal_lua(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node)
        return luaL_error(L, "stage.signal: this state belongs to no node");
    if (lua_isnil(L, 1))
        return reply_now(L);
    target_extras x = {0};
    if (lua_type(L, 1) == LUA_TTABLE)
        read_table_target(L, &x);
    const char *target = luaL_checkstring(L, 1);
    sn_target t;
    char err[300];
    if (sn_target_parse(target, host->stage ? host->stage : "", &t, err, sizeof err) != SN_OK)
        return luaL_error(L, "stage.signal: %s", err);
    if (t.mode == SN_TARGET_SYNC) {
        if (host->job)
            return luaL_error(L, "stage.signal: a job cannot call its actor synchronously");
        return sn_waitfor_call(L, t.msg, 2);
    }
    if (t.mode >= SN_TARGET_LOCK)
        return locks(L, &t);
    if (!host->actor)
        return luaL_error(L, "stage.signal: no actor sends from here");
    if (x.actor && t.mode != SN_TARGET_SELF && t.mode != SN_TARGET_ONE)
        return luaL_error(L, "stage.signal: target '%s': with an address, the target is 'msg' "
                             "or 'sid:msg' (one actor)", target);
    if (x.actor) /* the address decides where it goes */
        snprintf(t.stage, sizeof t.stage, "%s", x.stage);
    int curl = sn_lua_curl_signal(L, &t); /* "curl:ID": an HTTP request (lua_curl.h) */
    if (curl >= 0)
        return curl;
    const char *reply = t.reply[0] ? t.reply : NULL;
    sn_buf buf; /* the message's block: its head, then the values (no copy of them) */
    sn_buf_init(&buf);
    size_t head = sn_msg_head(t.msg, reply, host->stage);
    if (sn_buf_reserve(&buf, head + 64) != 0)
        return luaL_error(L, "stage.signal: %s", sn_strerror(SN_ENOMEM));
    buf.len = head;
    host->functions = 0;
    encode_values(L, 2, 2, &buf, "stage.signal"); /* frees buf when it raises */
    sn_msg *m = sn_msg_adopt(&buf, head, SN_MSG_SIGNAL, t.msg, reply, host->stage);
    m->src = host->actor;
    m->deadline = x.deadline;
    remote_enc enc = {L, cluster_of(host)};
    sn_send s = {
        .stage = t.stage,
        .actor = x.actor ? x.actor : t.mode == SN_TARGET_SELF ? host->actor : 0,
        .scope = t.mode == SN_TARGET_LOCAL    ? SN_SCOPE_LOCAL
                 : t.mode == SN_TARGET_REMOTE ? SN_SCOPE_REMOTE
                                              : SN_SCOPE_ALL,
        .broadcast = t.mode == SN_TARGET_ALL,
        .msg = m,
        .count_out = 1,
        .src_stage = host->stage,
        .src_counts = host->counts,
        .encode = encode_for,
        .ud = &enc,
    };
    char home[SN_ROUTER_NODE_MAX];
    sn_lua_builtin_route(L, &t, &s, home, sizeof home); /* index, route, ticket: their home */
    size_t queued = 0;
    int rc = sn_send_route(host->node, &s, &queued); /* consumes m */
    if (rc == SN_OK)
        return result(L, (int)queued, NULL);
    char why[300];
    sn_send_why(rc, t.stage, why, sizeof why);
    if (rc != SN_EFULL)
        sn_log_write(host->log, SN_LOG_DEBUG, host->who, "signal '%s' dropped: %s", target, why);
    if (reply)
        send_error(L, host->actor, reply, why);
    return result(L, 0, why);
}
