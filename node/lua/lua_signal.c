/* lua_signal: a signal's values are encoded once, then queued for each chosen actor. The
 * router picks actors; when the cluster exists, a remote instance is one more choice. */
#include "lua_signal.h"
#include "lua_state.h"
#include "lua_waitfor.h"
#include "sn_cluster.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_router.h"
#include "sn_snapshot.h"
#include "sn_target.h"

#include <lauxlib.h>
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

/* Queues one SIGNAL message; returns the node's result (SN_OK, SN_EFULL, SN_ENOENT, ...). */
static int post(lua_State *L, uint64_t to, const char *msg, const char *reply, const sn_buf *buf,
                int force)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, msg, reply, host->stage, buf->data, buf->len);
    if (!m)
        return SN_ENOMEM;
    m->src = host->actor;
    int rc = sn_node_post(host->node, to, m, force);
    if (rc != SN_OK)
        sn_msg_destroy(&m);
    else
        sn_node_count(host->node, SN_COUNT_OUT, host->stage ? host->stage : "", NULL);
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

/* Queues one message for another node (mode as the wire says); SN_OK, SN_ENOENT, SN_EFULL.
 * Values with functions are encoded again for that node: bytecode it holds goes as a hash. */
static int post_remote(lua_State *L, const char *node, int mode, const char *stage,
                       const char *msg, const char *reply, const sn_buf *buf)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_cluster *c = sn_node_cluster(host->node);
    if (!c)
        return SN_ENOENT;
    sn_buf mine;
    sn_buf_init(&mine);
    if (host->functions) {
        peer_cache pc = {c, node};
        sn_snapshot_fcache fc = {.known = peer_knows, .sent = peer_sent, .ud = &pc};
        sn_snapshot_opts o;
        sn_snapshot_opts_init(&o);
        o.fcache = &fc;
        char err[256];
        if (sn_snapshot_encode(L, 2, lua_gettop(L) - 1, &o, &mine, err, sizeof err) == SN_OK)
            buf = &mine;
    }
    int rc = sn_cluster_send(c, node, mode, stage, msg, reply, host->actor,
                             host->stage ? host->stage : "", buf->data, buf->len);
    sn_buf_fini(&mine);
    if (rc == SN_OK)
        sn_node_count(host->node, SN_COUNT_OUT, host->stage ? host->stage : "", NULL);
    return rc;
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
    sn_cluster *c = sn_node_cluster(host->node);
    if (c) {
        sn_cluster_reply(c, m, host->actor, host->stage, status, text, buf ? buf->data : NULL,
                         buf ? buf->len : 0);
        sn_node_count(host->node, SN_COUNT_OUT, host->stage ? host->stage : "", NULL);
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

void sn_signal_reply_error(lua_State *L, const sn_msg *m, const char *text)
{
    if (!remote_reply(L, m, SN_WIRE_FAILED, text, NULL))
        send_error(L, m->src, m->reply, text);
}

/* stage.signal(nil, ...): answers the message being handled. */
static int reply_now(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const sn_msg *m = host->msg;
    if (!m || !m->reply)
        return luaL_error(L, "stage.signal(nil, ...): there is no message asking for a reply");
    sn_signal_reply(L, m, 2, lua_gettop(L) - 1);
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

int sn_signal_lua(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node)
        return luaL_error(L, "stage.signal: this state belongs to no node");
    if (lua_isnil(L, 1))
        return reply_now(L);
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
    const char *reply = t.reply[0] ? t.reply : NULL;
    sn_buf buf;
    sn_buf_init(&buf);
    host->functions = 0;
    encode_values(L, 2, 2, &buf, "stage.signal");
    sn_router *r = sn_node_router(host->node);
    int queued = 0, full = 0;
    switch (t.mode) {
    case SN_TARGET_SELF:
        queued = post(L, host->actor, t.msg, reply, &buf, 0) == SN_OK;
        full = !queued;
        break;
    case SN_TARGET_ONE:
    case SN_TARGET_LOCAL:
    case SN_TARGET_REMOTE: { /* round-robin over the instances in scope, skipping full ones */
        sn_router_scope scope = t.mode == SN_TARGET_LOCAL    ? SN_SCOPE_LOCAL
                                : t.mode == SN_TARGET_REMOTE ? SN_SCOPE_REMOTE
                                                             : SN_SCOPE_ALL;
        sn_route route;
        for (size_t k = 0; !queued && sn_router_route(r, t.stage, scope, k, &route); k++) {
            int rc = route.actor ? post(L, route.actor, t.msg, reply, &buf, 0)
                                 : post_remote(L, route.node, SN_WIRE_ONE, t.stage, t.msg,
                                               reply, &buf);
            queued = rc == SN_OK;
            full |= rc == SN_EFULL;
        }
        break;
    }
    case SN_TARGET_ALL: {
        size_t n = sn_router_count(r, t.stage);
        uint64_t *ids = n ? malloc(n * sizeof *ids) : NULL;
        n = ids ? sn_router_all(r, t.stage, ids, n) : 0;
        for (size_t i = 0; i < n; i++) {
            int rc = post(L, ids[i], t.msg, reply, &buf, 0);
            queued += rc == SN_OK;
            full |= rc == SN_EFULL;
        }
        free(ids);
        char nodes[64][SN_ROUTER_NODE_MAX]; /* each other node delivers to all of its own */
        uint32_t counts[64];
        size_t nn = sn_router_nodes(r, t.stage, nodes, counts, 64);
        for (size_t i = 0; i < nn; i++) {
            int rc = post_remote(L, nodes[i], SN_WIRE_ALL, t.stage, t.msg, reply, &buf);
            queued += rc == SN_OK ? (int)counts[i] : 0;
            full |= rc == SN_EFULL;
        }
        break;
    }
    default:
        break;
    }
    sn_buf_fini(&buf);
    if (queued)
        return result(L, queued, NULL);
    char why[300];
    if (full)
        snprintf(why, sizeof why, "mailbox full");
    else
        snprintf(why, sizeof why, "no route to %s", t.stage[0] ? t.stage : "self");
    if (!full)
        sn_log_write(host->log, SN_LOG_DEBUG, host->who, "signal '%s' dropped: %s", target, why);
    sn_node_count(host->node, SN_COUNT_DROP, t.stage[0] ? t.stage : host->stage,
                  full ? "mailbox_full" : "no_route");
    if (reply)
        send_error(L, host->actor, reply, why);
    return result(L, 0, why);
}
