/* lua_broker: socket objects are small userdata holding an id; what a script attaches to a
 * socket (callbacks, user fields) lives in a registry table of the state that holds the
 * object, keyed by id, so the owner's events find their callbacks. Operations on a socket
 * go to the broker by id: this node's through its loop, another node's over the cluster
 * (the id's high bits name the node). */
#include "lua_broker.h"
#include "lua_chunks.h"
#include "lua_broker_addr.h"
#include "lua_host.h"
#include "sn_broker.h"
#include "sn_cluster.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_snapshot.h"

#include <errno.h>
#include <lauxlib.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

static const char K_SOCKS = 0; /* id -> entry {obj=, receive=, close=, accept=, ...} */
#define SOCKET_MT "stage-node.broker.socket"

typedef struct lsock {
    lua_Integer id;
} lsock;

static sn_broker *broker_of(lua_State *L)
{
    sn_lua_host *h = sn_lua_host_of(L);
    return h->ctx ? h->ctx->broker : NULL;
}

static sn_broker *need_broker(lua_State *L, const char *fn)
{
    sn_broker *b = broker_of(L);
    if (!b)
        luaL_error(L, "broker.%s: no broker in this state", fn);
    return b;
}

static const char K_OWNER = 0; /* in the socks table: the job it belongs to */

/* The socks table of the code running now. On a worker each job starts with an empty one, so
 * user fields set by one actor's job are never seen by another's. */
static void push_socks(lua_State *L)
{
    sn_lua_host *h = sn_lua_host_of(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_SOCKS);
    if (!h->job)
        return;
    lua_rawgetp(L, -1, &K_OWNER);
    int same = lua_touserdata(L, -1) == (void *)h->job;
    lua_pop(L, 1);
    if (same)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, h->job);
    lua_rawsetp(L, -2, &K_OWNER);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SOCKS);
}

/* The entry of id (created when missing) pushed on the stack. Its "fields" table (the user
 * fields) is made when the first is set: most sockets never get one. */
static int push_entry(lua_State *L, lua_Integer id)
{
    push_socks(L);
    if (lua_rawgeti(L, -1, id) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 4); /* obj, peer, local, receive; "fields" on the first one */
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, id);
    }
    lua_remove(L, -2);
    return lua_gettop(L);
}

/* The entry of id pushed on the stack, or nil (then 0) without making one: reading a field
 * of a socket this state never touched must not grow the table. */
static int get_entry(lua_State *L, lua_Integer id)
{
    push_socks(L);
    int t = lua_rawgeti(L, -1, id);
    lua_remove(L, -2);
    return t == LUA_TTABLE ? lua_gettop(L) : 0;
}

static void drop_entry(lua_State *L, lua_Integer id)
{
    push_socks(L);
    lua_pushnil(L);
    lua_rawseti(L, -2, id);
    lua_pop(L, 1);
}

/* The socket object of id: one per state and id for sockets this state has a record of
 * (its own, or one it set a field on); a fresh one otherwise, so that broker.f over many
 * other actors' ids leaves nothing behind. */
static void push_socket(lua_State *L, lua_Integer id)
{
    int e = get_entry(L, id);
    if (e && lua_getfield(L, e, "obj") == LUA_TUSERDATA) {
        lua_remove(L, e);
        return;
    }
    if (e)
        lua_pop(L, 1);
    lsock *s = lua_newuserdata(L, sizeof *s);
    s->id = id;
    luaL_setmetatable(L, SOCKET_MT);
    if (e) {
        lua_pushvalue(L, -1);
        lua_setfield(L, e, "obj");
        lua_remove(L, e);
    } else {
        lua_remove(L, -2); /* the nil of get_entry */
    }
}

static const char K_SOCK = 0; /* true in a socket's metatable: the shared one or its own */

/* The socket object at idx, or NULL: a full userdata of a socket's size whose metatable says
 * so (the shared SOCKET_MT, or the one a socket gets once it commits often, s_index). */
static lsock *test_sock(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof(lsock) ||
        !lua_getmetatable(L, idx))
        return NULL;
    int ok = lua_rawgetp(L, -1, &K_SOCK) == LUA_TBOOLEAN;
    lua_pop(L, 2);
    return ok ? lua_touserdata(L, idx) : NULL;
}

static lsock *check_sock(lua_State *L, int idx)
{
    lsock *s = test_sock(L, idx);
    if (!s)
        luaL_argerror(L, idx, "broker.socket expected");
    return s;
}

/* A socket id from a socket object or an integer at idx; 0 when neither. */
static lua_Integer id_at(lua_State *L, int idx)
{
    lsock *s = test_sock(L, idx);
    if (s)
        return s->id;
    if (lua_type(L, idx) == LUA_TNUMBER && lua_isinteger(L, idx))
        return lua_tointeger(L, idx);
    return 0;
}

/* During its actor's turn (sn_lua_broker_hold), what a state does to this node's sockets is
 * gathered and queued as one command (one wake of the loop for the answers to many
 * messages, not one per commit or per message). One per state, kept alive by the registry,
 * reached through the host's broker_batch; it takes operations while host->broker_hold. */
static const char K_BATCH = 0;
typedef struct lbatch {
    sn_broker_batch q;
} lbatch;

static int batch_gc(lua_State *L)
{
    lbatch *t = lua_touserdata(L, 1);
    sn_lua_host *host = sn_lua_host_of(L); /* it outlives the state: no dangling batch */
    if (host->broker_batch == t) {
        host->broker_batch = NULL;
        host->broker_send = NULL;
    }
    sn_broker_batch_fini(&t->q);
    return 0;
}

static lbatch *batch_of(lua_State *L)
{
    return sn_lua_host_of(L)->broker_batch;
}

/* An operation on socket id, wherever it lives. SN_OK or an error code. */
static int route_in(lua_State *L, lbatch *t, sn_broker_op op, lua_Integer id, unsigned flags,
                    double ms, const void *data, size_t len, const void *addr, size_t addrlen)
{
    sn_broker *b = broker_of(L);
    char node[256];
    int where = sn_lua_broker_owner(L, b, id, 0, node, sizeof node);
    if (where == 0) {
        if (!t)
            t = batch_of(L);
        if (t && sn_lua_host_of(L)->broker_hold) {
            if (sn_broker_batch_add(b, &t->q, op, (uint64_t)id, flags, ms, data, len, addr,
                                    addrlen) == SN_OK)
                return SN_OK;
            sn_broker_batch_send(b, &t->q); /* no room: what came before still goes first */
        }
        return sn_broker_op_queue(b, op, (uint64_t)id, flags, ms, data, len, addr, addrlen);
    }
    if (where < 0)
        return SN_ENOENT;
    void *p;
    size_t pl;
    if (sn_broker_remote_pack(op, (uint64_t)id, flags, ms, data, len, addr, addrlen, &p, &pl))
        return SN_ENOMEM;
    sn_lua_host *h = sn_lua_host_of(L);
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, SN_BROKER_STAGE, NULL, h->stage, NULL, 0);
    int rc = SN_ENOMEM;
    if (m) {
        m->src = h->actor;
        rc = sn_node_remote_send(h->node, node, 0, SN_BROKER_STAGE, m, p, pl);
        if (rc == SN_ENOENT && sn_lua_broker_owner(L, b, id, 1, node, sizeof node) > 0) /* cache was stale */
            rc = sn_node_remote_send(h->node, node, 0, SN_BROKER_STAGE, m, p, pl);
        sn_msg_destroy(&m);
    }
    free(p);
    return rc;
}

/* An operation on socket id, the state's batch looked up (route_in: t given, or NULL). */
static int route(lua_State *L, sn_broker_op op, lua_Integer id, unsigned flags, double ms,
                 const void *data, size_t len, const void *addr, size_t addrlen)
{
    return route_in(L, NULL, op, id, flags, ms, data, len, addr, addrlen);
}

/* The bytes to send for the value at idx: a string as is; a table as MessagePack when the
 * socket decodes msgpack (or any table: there is no other way to send it). */
static const char *bytes_of(lua_State *L, int idx, size_t *len, sn_buf *buf)
{
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
        return lua_tolstring(L, idx, len);
    if (lua_type(L, idx) != LUA_TTABLE)
        return NULL;
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    char err[256];
    if (sn_snapshot_encode(L, idx, 1, &o, buf, err, sizeof err) != SN_OK) {
        sn_buf_fini(buf);
        luaL_error(L, "socket.commit: %s", err);
    }
    *len = buf->len - 2; /* the snapshot's version byte and one-value array header */
    return buf->data + 2;
}

/* t: the state's batch when the caller has it (socket.commit holds it), else NULL. */
static int commit_value(lua_State *L, lbatch *t, lua_Integer id, int idx, int text,
                        int addr_idx)
{
    if (lua_isnoneornil(L, idx))
        return SN_OK;
    sn_buf buf;
    sn_buf_init(&buf);
    size_t len = 0;
    const char *d = bytes_of(L, idx, &len, &buf);
    if (!d) {
        sn_buf_fini(&buf);
        return luaL_error(L, "socket.commit: expected a string or a table, got %s",
                          luaL_typename(L, idx));
    }
    size_t al = 0;
    const char *addr = addr_idx && lua_type(L, addr_idx) == LUA_TSTRING
                           ? lua_tolstring(L, addr_idx, &al) : NULL;
    unsigned flags = lua_type(L, idx) == LUA_TTABLE ? SN_BROKER_F_MSGPACK
                     : text                          ? SN_BROKER_F_TEXT : 0;
    int rc = route_in(L, t, SN_BROKER_COMMIT, id, flags, 0, d, len, addr, al);
    sn_buf_fini(&buf);
    return rc;
}

/* socket.commit(v [, addr | "text" | "binary"]) */
static int l_commit(lua_State *L)
{
    lua_Integer id = lua_tointeger(L, lua_upvalueindex(1));
    int base = lua_gettop(L) > 1 && test_sock(L, 1) ? 2 : 1; /* s:commit(v) */
    int text = lua_type(L, base) == LUA_TSTRING || lua_type(L, base) == LUA_TNUMBER;
    int addr = 0;
    if (lua_type(L, base + 1) == LUA_TSTRING) {
        size_t kl;
        const char *k = lua_tolstring(L, base + 1, &kl);
        if (kl == 6 && !memcmp(k, "binary", 6))
            text = 0;
        else if (kl != 4 || memcmp(k, "text", 4))
            addr = base + 1;
    }
    lbatch *t = lua_touserdata(L, lua_upvalueindex(2));
    sn_broker *b = broker_of(L);
    int rc;
    size_t len;
    /* the usual case, bytes to a socket of this node during its owner's turn: into the
     * batch directly (another node's id is refused by the batch: routed below) */
    if (!addr && t && b && sn_lua_host_of(L)->broker_hold && lua_type(L, base) == LUA_TSTRING) {
        const char *d = lua_tolstring(L, base, &len);
        rc = sn_broker_batch_add(b, &t->q, SN_BROKER_COMMIT, (uint64_t)id,
                                 text ? SN_BROKER_F_TEXT : 0, 0, d, len, NULL, 0);
        if (rc == SN_OK) {
            lua_pushinteger(L, 0);
            return 1;
        }
    }
    rc = commit_value(L, t, id, base, text, addr);
    lua_pushinteger(L, rc == SN_OK ? 0 : rc == SN_ENOENT ? ENOTCONN : EIO);
    return 1;
}

static int l_sclose(lua_State *L)
{
    lua_Integer id = lua_tointeger(L, lua_upvalueindex(1));
    route(L, SN_BROKER_CLOSE, id, 0, 0, "closed by the script", 20, NULL, 0);
    return 0;
}

/* f bound to id (upvalue 1) and to the state's batch (upvalue 2, light: the batch lives as
 * long as the state, in its registry). */
static void push_bound(lua_State *L, lua_Integer id, lua_CFunction f)
{
    lua_pushinteger(L, id);
    lua_pushlightuserdata(L, batch_of(L));
    lua_pushcclosure(L, f, 2);
}

static int s_index(lua_State *L);

/* __index of a socket's own table of fields (below), with upvalues "commit" and the socket:
 * s_index for the socket. */
static int s_index_own(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_replace(L, 1);
    return s_index(L);
}

/* Gives the socket at idx a metatable of its own whose __index is a table holding commit (the
 * function at f): the VM then finds s.commit by a table read, without calling __index (a call
 * through the metamethod was a seventh of the worker's instructions per echoed message). The
 * other keys go on to s_index through that table's metatable. Made at a socket's second read
 * of s.commit, so that sockets that commit once (a greeting) do not pay its ~500 bytes. */
static void own_metatable(lua_State *L, int idx, int f)
{
    lua_createtable(L, 0, 5); /* the socket's metatable */
    int m = lua_gettop(L);
    luaL_getmetatable(L, SOCKET_MT);
    static const char *const copied[] = {"__newindex", "__tostring", "__metatable"};
    for (int i = 0; i < 3; i++) {
        lua_getfield(L, -1, copied[i]);
        lua_setfield(L, m, copied[i]);
    }
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, m, &K_SOCK);
    lua_createtable(L, 0, 1); /* __index: {commit = f}, then s_index */
    lua_pushvalue(L, f);
    lua_setfield(L, -2, "commit");
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "commit");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, s_index_own, 2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, m, "__index");
    lua_setmetatable(L, idx);
}

/* The socket metatable's __index, with upvalue 1 the string "commit", which scripts read once
 * per message: found by one compare of interned strings, not strcmp. */
static int s_index(lua_State *L)
{
    lsock *s = check_sock(L, 1);
    if (lua_rawequal(L, 2, lua_upvalueindex(1))) { /* bound once per object */
        if (lua_getuservalue(L, 1) != LUA_TFUNCTION) {
            push_bound(L, s->id, l_commit);
            lua_pushvalue(L, -1);
            lua_setuservalue(L, 1);
        } else if (lua_getmetatable(L, 1)) {
            luaL_getmetatable(L, SOCKET_MT);
            int shared = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
            if (shared) /* the second time: from now on without this call */
                own_metatable(L, 1, lua_gettop(L));
        }
        return 1;
    }
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer k = lua_tointeger(L, 2);
        if (k == 0) {
            lua_pushinteger(L, s->id);
            return 1;
        }
        int e = get_entry(L, s->id);
        if (e)
            lua_getfield(L, e, k < 0 ? "local" : "peer");
        return 1;
    }
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "id")) {
        lua_pushinteger(L, s->id);
        return 1;
    }
    if (!strcmp(k, "commit")) { /* bound once per object: scripts call it per message */
        if (lua_getuservalue(L, 1) != LUA_TFUNCTION) {
            push_bound(L, s->id, l_commit);
            lua_pushvalue(L, -1);
            lua_setuservalue(L, 1);
        }
        return 1;
    }
    if (!strcmp(k, "close")) {
        push_bound(L, s->id, l_sclose);
        return 1;
    }
    int e = get_entry(L, s->id);
    if (!strcmp(k, "errno") || !strcmp(k, "expire")) {
        if ((!e || lua_getfield(L, e, k) == LUA_TNIL) && !strcmp(k, "errno"))
            lua_pushinteger(L, 0);
        return 1;
    }
    if (!e || lua_getfield(L, e, "fields") != LUA_TTABLE)
        return 1; /* nil */
    lua_getfield(L, -1, k);
    return 1;
}

static int s_newindex(lua_State *L)
{
    lsock *s = check_sock(L, 1);
    const char *k = luaL_checkstring(L, 2);
    int e = push_entry(L, s->id);
    if (!strcmp(k, "expire") || !strcmp(k, "commit")) {
        double ms = lua_isnil(L, 3) ? 0 : luaL_checknumber(L, 3);
        route(L, k[0] == 'e' ? SN_BROKER_EXPIRE : SN_BROKER_INTERVAL, s->id, 0, ms, NULL, 0,
              NULL, 0);
        if (k[0] == 'e') {
            lua_pushvalue(L, 3);
            lua_setfield(L, e, "expire");
        }
        return 0;
    }
    if (!strcmp(k, "close") || !strcmp(k, "receive")) {
        if (!lua_isnil(L, 3))
            luaL_checktype(L, 3, LUA_TFUNCTION);
        lua_pushvalue(L, 3);
        lua_setfield(L, e, k);
        return 0;
    }
    if (!strcmp(k, "id") || !strcmp(k, "errno"))
        return luaL_error(L, "socket.%s is read-only", k);
    if (lua_getfield(L, e, "fields") != LUA_TTABLE) { /* made on the first user field */
        if (lua_isnil(L, 3))
            return 0;
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, e, "fields");
    }
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, k);
    return 0;
}

static int s_tostring(lua_State *L)
{
    lsock *s = check_sock(L, 1);
    lua_pushfstring(L, "broker: %I", s->id);
    return 1;
}

/* ---- the broker table ------------------------------------------------------------------ */

static int fail_errno(lua_State *L, int err_no, const char *why)
{
    lua_pushinteger(L, err_no);
    lua_pushstring(L, why);
    return 2;
}

static sn_lua_host *need_actor(lua_State *L, const char *fn)
{
    sn_lua_host *h = sn_lua_host_of(L);
    if (!h->node || !h->actor || h->job)
        luaL_error(L, "broker.%s: only an actor can own sockets (events arrive in its mailbox)",
                   fn);
    return h;
}

/* broker.ready(uri, fn): a listener; fn(socket, addr) on each accept (udp: fn(socket, data,
 * addr) on each datagram). The listener's socket, or errno, why. */
static int l_ready(lua_State *L)
{
    const char *uri = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    sn_lua_host *h = need_actor(L, "ready");
    sn_broker *b = need_broker(L, "ready");
    sn_buri u;
    char err[512];
    if (sn_buri_parse(uri, &u, err, sizeof err) != SN_OK)
        return fail_errno(L, EINVAL, err);
    uint64_t id;
    int err_no = 0;
    struct sockaddr_storage bound;
    size_t bl = sizeof bound;
    if (sn_broker_listen(b, &u, h->actor, &id, &bound, &bl, &err_no, err, sizeof err) != SN_OK)
        return fail_errno(L, err_no, err);
    int e = push_entry(L, (lua_Integer)id);
    if (bl) {
        lua_pushlstring(L, (const char *)&bound, bl);
        lua_setfield(L, e, "local");
    }
    lua_pushvalue(L, 2);
    lua_setfield(L, e, u.kind == SN_BURI_UDP ? "receive" : "accept");
    lua_pushboolean(L, u.kind == SN_BURI_UDP);
    lua_setfield(L, e, "udp");
    push_socket(L, (lua_Integer)id);
    return 1;
}

/* broker.join(uri, fn [, timeout_ms]): connects; fn(socket) once connected. */
static int l_join(lua_State *L)
{
    const char *uri = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    double ms = luaL_optnumber(L, 3, 3000);
    sn_lua_host *h = need_actor(L, "join");
    sn_broker *b = need_broker(L, "join");
    sn_buri u;
    char err[512];
    if (sn_buri_parse(uri, &u, err, sizeof err) != SN_OK)
        return fail_errno(L, EINVAL, err);
    uint64_t id;
    int err_no = 0;
    if (sn_broker_join(b, &u, h->actor, ms, &id, &err_no, err, sizeof err) != SN_OK)
        return fail_errno(L, err_no, err);
    int e = push_entry(L, (lua_Integer)id);
    lua_pushvalue(L, 2);
    lua_setfield(L, e, "connect");
    push_socket(L, (lua_Integer)id);
    return 1;
}

/* broker.close(socket | id | {id, ...}) */
static int l_close(lua_State *L)
{
    need_broker(L, "close");
    if (lua_istable(L, 1)) {
        for (lua_Integer i = 1; lua_rawgeti(L, 1, i) != LUA_TNIL; i++) {
            lua_Integer id = id_at(L, -1);
            if (id)
                route(L, SN_BROKER_CLOSE, id, 0, 0, "closed by the script", 20, NULL, 0);
            lua_pop(L, 1);
        }
        return 0;
    }
    lua_Integer id = id_at(L, 1);
    if (id)
        route(L, SN_BROKER_CLOSE, id, 0, 0, "closed by the script", 20, NULL, 0);
    return 0;
}

/* broker.f(id): the socket object of id (any node's), or nil for what is not an id. */
static int l_f(lua_State *L)
{
    lua_Integer id = id_at(L, 1);
    if (!id || !sn_broker_id_tag((uint64_t)id)) {
        lua_pushnil(L);
        return 1;
    }
    push_socket(L, id);
    return 1;
}

/* broker.signal(id | socket, v): v arrives at the socket's receive as if the peer sent it;
 * broker.signal({id, ...}, v): v is committed to each. */
static int l_signal(lua_State *L)
{
    need_broker(L, "signal");
    if (lua_istable(L, 1) && !luaL_testudata(L, 1, SOCKET_MT)) {
        for (lua_Integer i = 1; lua_rawgeti(L, 1, i) != LUA_TNIL; i++) {
            lua_Integer id = id_at(L, -1);
            if (id)
                commit_value(L, NULL, id, 2, lua_type(L, 2) == LUA_TSTRING, 0);
            lua_pop(L, 1);
        }
        return 0;
    }
    lua_Integer id = id_at(L, 1);
    if (!id)
        return luaL_error(L, "broker.signal: expected a socket, an id or a list of ids");
    sn_buf buf;
    sn_buf_init(&buf);
    size_t len = 0;
    const char *d = bytes_of(L, 2, &len, &buf);
    if (!d) {
        sn_buf_fini(&buf);
        return luaL_error(L, "broker.signal: expected a string or a table");
    }
    route(L, SN_BROKER_INJECT, id, lua_type(L, 2) == LUA_TTABLE ? SN_BROKER_F_MSGPACK : 0, 0, d,
          len, NULL, 0);
    sn_buf_fini(&buf);
    return 0;
}

/* broker.submit(socket, fn, ...): stage.submit keyed by the socket, fn(socket, ...). */
/* broker.submit(socket, fn, ...): stage.submit keyed by the socket, fn(socket, ...). The job
 * function reaches `broker` through its _ENV (bound where it runs), fn travels as an argument. */
static const char SUBMIT[] =
    "local submit = ...\n"
    "return function(s, fn, ...)\n"
    "  local id = type(s) == 'number' and s or s.id\n"
    "  return submit(id, function(id, fn, ...) return fn(broker.f(id), ...) end, id, fn, ...)\n"
    "end\n";

void sn_lua_broker_open(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SOCKS);
    lbatch *t = lua_newuserdata(L, sizeof *t);
    memset(t, 0, sizeof *t);
    sn_lua_host *host = sn_lua_host_of(L);
    host->broker_batch = t;
    host->broker_send = sn_lua_broker_send;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BATCH);
    if (luaL_newmetatable(L, SOCKET_MT)) {
        lua_pushboolean(L, 1);
        lua_rawsetp(L, -2, &K_SOCK);
        lua_pushliteral(L, "commit");
        lua_pushcclosure(L, s_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, s_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, s_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "broker.socket");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"ready", l_ready}, {"join", l_join}, {"close", l_close},
                                   {"f", l_f}, {"signal", l_signal}, {"ntoa", sn_lua_broker_ntoa},
                                   {"aton", sn_lua_broker_aton}, {"ifaddr", sn_lua_broker_ifaddr}, {NULL, NULL}};
    luaL_newlib(L, fns);
    if (sn_lua_chunks_loadbuffer(L, SUBMIT, sizeof SUBMIT - 1, "=broker.submit") == LUA_OK) {
        lua_getglobal(L, "stage");
        lua_getfield(L, -1, "submit");
        lua_remove(L, -2);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK)
            lua_setfield(L, -2, "submit");
        else
            lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
    }
    lua_setglobal(L, "broker");
}

/* ---- events ------------------------------------------------------------------------- */

/* Pushes the payload of ev as the script sees it: bytes, or the decoded value. */
static int push_payload(lua_State *L, const sn_broker_event *ev)
{
    if (ev->flags & SN_BROKER_F_MSGPACK) {
        char *p = malloc(ev->len + 2);
        if (!p)
            return 0;
        p[0] = 1;           /* snapshot version */
        p[1] = (char)0x91;  /* one value */
        memcpy(p + 2, ev->data, ev->len);
        sn_snapshot_opts o;
        sn_snapshot_opts_init(&o);
        int n = 0;
        char err[256];
        int rc = sn_snapshot_decode(L, p, ev->len + 2, &o, &n, err, sizeof err);
        free(p);
        return rc == SN_OK && n == 1;
    }
    lua_pushlstring(L, ev->data, ev->len);
    return 1;
}

/* Calls the callback at fn with n args above it; commits every non-nil result to id. */
static void call_and_commit(lua_State *L, lua_Integer id, int nargs, const char *what,
                            int text)
{
    int base = lua_gettop(L) - nargs - 1;
    if (sn_lua_pcall(L, nargs, LUA_MULTRET, what) != SN_OK)
        return;
    for (int i = base + 1; i <= lua_gettop(L); i++)
        if (!lua_isnil(L, i) && lua_type(L, i) != LUA_TBOOLEAN)
            commit_value(L, NULL, id, i, text && lua_type(L, i) != LUA_TTABLE, 0);
}

static void close_orphan(lua_State *L, uint64_t id, const char *why)
{
    route(L, SN_BROKER_CLOSE, (lua_Integer)id, 0, 0, why, strlen(why), NULL, 0);
}

/* One payload to the receive callback of the entry at e, with the socket object at sock (its
 * results committed): 0 when the payload does not decode (the socket is closed then). */
static int receive_one(lua_State *L, int e, int sock, const sn_broker_event *ev)
{
    lua_Integer id = (lua_Integer)ev->socket;
    if (lua_getfield(L, e, "receive") != LUA_TFUNCTION)
        return 1;
    lua_pushvalue(L, sock);
    int n = 2;
    if (!push_payload(L, ev)) {
        lua_settop(L, sock);
        close_orphan(L, ev->socket, "a frame that is not MessagePack");
        return 0;
    }
    if (ev->peer) {
        lua_pushlstring(L, ev->peer, ev->peer_len);
        n++;
    }
    call_and_commit(L, id, n, "broker receive", (ev->flags & SN_BROKER_F_TEXT) != 0);
    return 1;
}

/* The frames of a batch (tcp ?packet: the frames of one read) go to the receive callback
 * from one protected call, not one each: the call's setup (the traceback handler, the
 * governor's entry) was most of the per-frame cost beside the script's own. Each frame is
 * still an entry of its own for the governor (its budget restarts), and one that raises
 * ends only its own turn: the caller calls again from the frame after it. */
typedef struct frames_st {
    const sn_broker_event *ev; /* the batch */
    size_t pos;                /* the next frame */
    int done;                  /* no frame left (or no callback, or a frame closed it) */
} frames_st;

/* frames_run(st, entry, socket, "receive") under sn_lua_pcall. */
static int frames_run(lua_State *L)
{
    frames_st *st = lua_touserdata(L, 1);
    sn_lua_host *host = sn_lua_host_of(L);
    sn_broker_event one = *st->ev; /* each frame as an event of its own */
    for (;;) {
        lua_settop(L, 4);
        if (!sn_broker_frames_next(st->ev, &st->pos, &one.data, &one.len)) {
            st->done = 1;
            return 0;
        }
        lua_pushvalue(L, 4);
        if (lua_rawget(L, 2) != LUA_TFUNCTION) { /* read per frame: a callback may change it */
            st->done = 1;
            return 0;
        }
        lua_pushvalue(L, 3);
        if (!push_payload(L, &one)) {
            st->done = 1;
            lua_settop(L, 4);
            close_orphan(L, one.socket, "a frame that is not MessagePack");
            return 0;
        }
        host->entry_cpu = -1; /* the budget starts again for this frame, as sn_lua_pcall's */
        lua_call(L, 2, LUA_MULTRET);
        int text = (one.flags & SN_BROKER_F_TEXT) != 0;
        for (int i = 5; i <= lua_gettop(L); i++)
            if (!lua_isnil(L, i) && lua_type(L, i) != LUA_TBOOLEAN)
                commit_value(L, NULL, (lua_Integer)one.socket, i,
                             text && lua_type(L, i) != LUA_TTABLE, 0);
    }
}

static void deliver(lua_State *L, const sn_broker_event *evp);

void sn_lua_broker_deliver(lua_State *L, const sn_msg *m)
{
    sn_broker_event ev;
    if (sn_broker_event_read(m, &ev) == SN_OK)
        deliver(L, &ev);
}

void sn_lua_broker_send(lua_State *L)
{
    lbatch *t = batch_of(L);
    sn_broker *b = broker_of(L);
    if (t && t->q.n && b)
        sn_broker_batch_send(b, &t->q);
}

void sn_lua_broker_hold(lua_State *L, int on)
{
    sn_lua_host_of(L)->broker_hold = on;
    if (!on)
        sn_lua_broker_send(L);
}

size_t sn_lua_broker_held(lua_State *L)
{
    lbatch *t = sn_lua_host_of(L)->broker_batch;
    return t ? t->q.n : 0;
}

static void deliver(lua_State *L, const sn_broker_event *evp)
{
    sn_broker_event ev = *evp;
    int top = lua_gettop(L);
    lua_Integer id = (lua_Integer)ev.socket;
    push_socks(L);
    int socks = lua_gettop(L);
    if (!strcmp(ev.what, SN_BEV_ACCEPT)) {
        if (lua_rawgeti(L, socks, (lua_Integer)ev.listener) != LUA_TTABLE) {
            close_orphan(L, ev.socket, "the listener's owner restarted");
            close_orphan(L, ev.listener, "its owner restarted"); /* no one takes its clients */
            lua_settop(L, top);
            return;
        }
        int le = lua_gettop(L);
        int e = push_entry(L, id);
        lua_pushlstring(L, ev.peer, ev.peer_len);
        lua_setfield(L, e, "peer");
        lua_pushlstring(L, ev.local, ev.local_len);
        lua_setfield(L, e, "local");
        lua_getfield(L, le, "receive");
        lua_setfield(L, e, "receive");
        lua_getfield(L, le, "close");
        lua_setfield(L, e, "close");
        lua_getfield(L, le, "accept");
        push_socket(L, id);
        lua_pushlstring(L, ev.peer, ev.peer_len);
        int ok = sn_lua_pcall(L, 2, 1, "broker accept") == SN_OK;
        if (ok && lua_isfunction(L, -1)) {
            lua_setfield(L, e, "receive");
        } else if (!ok || (lua_toboolean(L, -1) == 0 && !lua_isnil(L, -1))) {
            close_orphan(L, ev.socket, ok ? "refused by the accept callback"
                                          : "the accept callback failed");
        } else if (lua_getfield(L, e, "receive") == LUA_TNIL) {
            sn_log_write(sn_lua_host_of(L)->log, SN_LOG_WARN, sn_lua_host_of(L)->who,
                         "broker: socket %lld has no receive callback: closed", (long long)id);
            close_orphan(L, ev.socket, "no receive callback");
        }
        lua_settop(L, top);
        return;
    }
    if (lua_rawgeti(L, socks, id) != LUA_TTABLE) {
        if (strcmp(ev.what, SN_BEV_CLOSE))
            close_orphan(L, ev.socket, "its owner has no record of it (restarted)");
        lua_settop(L, top);
        return;
    }
    int e = lua_gettop(L);
    if (!strcmp(ev.what, SN_BEV_CONNECT)) {
        lua_pushlstring(L, ev.peer, ev.peer_len);
        lua_setfield(L, e, "peer");
        lua_pushlstring(L, ev.local, ev.local_len);
        lua_setfield(L, e, "local");
        if (lua_getfield(L, e, "connect") == LUA_TFUNCTION) {
            push_socket(L, id);
            if (sn_lua_pcall(L, 1, 1, "broker connect") == SN_OK && lua_isfunction(L, -1))
                lua_setfield(L, e, "receive");
        }
    } else if (!strcmp(ev.what, SN_BEV_DATA) && (ev.flags & SN_BROKER_F_FRAMES)) {
        frames_st st = {.ev = &ev, .pos = 0, .done = 0};
        push_socket(L, id);
        int sock = lua_gettop(L);
        while (!st.done) { /* again after a frame whose callback raised: on from the next */
            lua_pushcfunction(L, frames_run);
            lua_pushlightuserdata(L, &st);
            lua_pushvalue(L, e);
            lua_pushvalue(L, sock);
            lua_pushliteral(L, "receive");
            sn_lua_pcall(L, 4, 0, "broker receive");
            lua_settop(L, sock);
        }
    } else if (!strcmp(ev.what, SN_BEV_DATA)) {
        push_socket(L, id);
        receive_one(L, e, lua_gettop(L), &ev);
    } else if (!strcmp(ev.what, SN_BEV_CLOSE)) {
        lua_pushinteger(L, ev.err);
        lua_setfield(L, e, "errno");
        if (lua_getfield(L, e, "close") == LUA_TFUNCTION) {
            push_socket(L, id);
            lua_pushinteger(L, ev.err);
            lua_pushlstring(L, ev.data, ev.len);
            sn_lua_pcall(L, 3, 0, "broker close");
        }
        drop_entry(L, id);
    }
    lua_settop(L, top);
}
