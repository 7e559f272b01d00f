/* sn_transport_zmq: ZeroMQ under the libev loop. ZMQ_FD is edge-like, so a drain always reads
 * until EAGAIN, and a drain that stops early (its budget) arms an idle watcher so the loop
 * comes straight back. A connection closed during a drain is only marked; it is freed when
 * the drain is over (never inside our own callback). */
#include "sn_transport_zmq.h"
#include "sn_curve.h"
#include "sn_error.h"
#include "sn_zap.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

enum { DRAIN_BUDGET = 10000 /* frames per socket per drain, then the loop comes back */ };

struct sn_conn {
    sn_conn *next;
    void *sock;
    ev_io io;
    int closing;
    int gently; /* closed with its linger (1 s): what it still queues goes out first */
    char peer[SN_CURVE_NAME_MAX + 1]; /* with CURVE: the node whose key is the server key */
};

typedef struct zt {
    sn_transport base;
    const sn_opts *o;
    sn_log *log;
    struct ev_loop *loop;
    void *zctx;
    sn_curve_keys *keys;
    sn_curve_allow *allow;
    sn_zap *zap;
    void *router;
    ev_io router_io;
    ev_idle more;
    sn_conn *conns;
    int draining;
    sn_log_rate fail_rate; /* "cannot make a socket"/"cannot connect": one gossip naming
                              many members could otherwise write a line for each */
} zt;

static void on_socket(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* the cluster's prepare watcher drains every socket before the loop sleeps */
}

static void on_more(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
}

static void watch(zt *t, void *sock, ev_io *io)
{
    int fd;
    size_t fdlen = sizeof fd;
    if (!t->loop || zmq_getsockopt(sock, ZMQ_FD, &fd, &fdlen) != 0)
        return;
    ev_io_init(io, on_socket, fd, EV_READ);
    ev_io_start(t->loop, io);
}

static void free_conn(zt *t, sn_conn *c)
{
    if (t->loop)
        ev_io_stop(t->loop, &c->io);
    int linger = 0;
    if (!c->gently)
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(c->sock);
    free(c);
}

static int zt_connect(sn_transport *base, const char *endpoint, const char *peer, sn_conn **out)
{
    zt *t = (zt *)base;
    *out = NULL;
    uint8_t server[SN_CURVE_KEY_LEN];
    if (t->keys && sn_curve_allow_key_of(t->allow, peer, server) != SN_OK) {
        sn_log_write(t->log, SN_LOG_WARN, "cluster", "not connecting to %s at %s: no key for "
                     "that node name in --curve-allow", peer && *peer ? peer : "(no name)",
                     endpoint);
        return SN_EUNTRUSTED;
    }
    sn_conn *c = calloc(1, sizeof *c);
    void *d = c ? zmq_socket(t->zctx, ZMQ_DEALER) : NULL;
    if (!d) {
        sn_log_rated(t->log, &t->fail_rate, SN_LOG_ERROR, "cluster", "cannot make a socket to %s: %s",
                     endpoint, c ? zmq_strerror(zmq_errno()) : "out of memory");
        free(c);
        return c ? SN_EIO : SN_ENOMEM;
    }
    if (t->keys)
        snprintf(c->peer, sizeof c->peer, "%s", peer);
    int hwm = t->o->peer_queue, linger = 1000, ivl = 200, ivl_max = t->o->join_retry_max_ms;
    int64_t maxmsg = t->o->frame_max;
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(d, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(d, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(d, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* No ZMTP heartbeats here: a heartbeat timeout makes ZeroMQ open a second connection
     * while the stalled first one may still deliver later, and frames would then arrive out
     * of order after a partition heals. Liveness is the cluster's own heartbeat's job. */
    if (t->keys && sn_curve_client(d, t->keys, server) != SN_OK) {
        sn_log_write(t->log, SN_LOG_ERROR, "cluster", "cannot set CurveZMQ on a connection to %s",
                     endpoint);
        zmq_close(d);
        free(c);
        return SN_EIO;
    }
    if (zmq_connect(d, endpoint) != 0) {
        sn_log_rated(t->log, &t->fail_rate, SN_LOG_ERROR, "cluster", "cannot connect to %s: %s", endpoint,
                     zmq_strerror(zmq_errno()));
        zmq_close(d);
        free(c);
        return SN_EIO;
    }
    c->sock = d;
    watch(t, d, &c->io);
    c->next = t->conns;
    t->conns = c;
    *out = c;
    return SN_OK;
}

static void reap(zt *t)
{
    for (sn_conn **pp = &t->conns; *pp;) {
        sn_conn *c = *pp;
        if (c->closing) {
            *pp = c->next;
            free_conn(t, c);
        } else {
            pp = &c->next;
        }
    }
}

static void zt_close(sn_transport *base, sn_conn *conn, int gently)
{
    zt *t = (zt *)base;
    conn->closing = 1;
    conn->gently = gently;
    if (!t->draining)
        reap(t);
}

static int zt_send(sn_transport *base, sn_conn *conn, const void *data, size_t len)
{
    (void)base;
    if (conn->closing)
        return SN_ENOENT;
    return zmq_send(conn->sock, data, len, ZMQ_DONTWAIT) < 0 ? SN_EFULL : SN_OK;
}

static int zt_answer(sn_transport *base, const void *id, size_t idlen, const void *data,
                     size_t len)
{
    zt *t = (zt *)base;
    if (!t->router)
        return SN_ENOENT;
    if (zmq_send(t->router, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EHOSTUNREACH ? SN_ENOENT : SN_EFULL;
    return zmq_send(t->router, data, len, ZMQ_DONTWAIT) < 0 ? SN_EFULL : SN_OK;
}

/* Reads what sock holds, until EAGAIN or the budget. */
static void drain_socket(zt *t, void *sock, const sn_conn *conn, sn_transport_frame_fn fn,
                         void *ud)
{
    int is_router = conn == NULL;
    for (int budget = 0; budget < DRAIN_BUDGET; budget++) {
        if (conn && conn->closing)
            return; /* closed by fn: what it still holds is dropped with it */
        zmq_msg_t part[2];
        int nparts = 0, more = 1, bad = 0;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                if (nparts == 0)
                    return; /* nothing more now */
                bad = 1;
                break;
            }
            more = zmq_msg_more(&m);
            if (nparts < 2) {
                part[nparts++] = m;
            } else {
                zmq_msg_close(&m); /* a frame of more parts than we use: ignore the rest */
                bad = 1;
            }
        }
        if (!bad && is_router && nparts == 2) {
            /* The sender is who ZAP admitted the connection's key as (never what a peer says
             * of itself); without CURVE nobody is authenticated, loopback included. */
            const char *peer = t->keys ? zmq_msg_gets(&part[1], "User-Id") : NULL;
            fn(ud, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), zmq_msg_data(&part[0]),
               zmq_msg_size(&part[0]), peer && *peer ? peer : NULL);
        } else if (!bad && !is_router && nparts == 1) {
            /* only the holder of conn's server key can talk on it */
            fn(ud, zmq_msg_data(&part[0]), zmq_msg_size(&part[0]), NULL, 0,
               conn->peer[0] ? conn->peer : NULL);
        }
        for (int i = 0; i < nparts; i++)
            zmq_msg_close(&part[i]);
    }
    /* the budget ran out before EAGAIN: the FD will not signal again, so come back at once */
    if (t->loop && !ev_is_active(&t->more))
        ev_idle_start(t->loop, &t->more);
}

static void zt_drain(sn_transport *base, sn_transport_frame_fn fn, void *ud)
{
    zt *t = (zt *)base;
    t->draining = 1;
    if (t->router)
        drain_socket(t, t->router, NULL, fn, ud);
    for (sn_conn *c = t->conns; c; c = c->next) {
        if (!c->closing) /* new connections are pushed in front: they hold nothing yet */
            drain_socket(t, c->sock, c, fn, ud);
    }
    t->draining = 0;
    reap(t);
}

static void zt_destroy(sn_transport *base)
{
    zt *t = (zt *)base;
    sn_log_rate_flush(t->log, &t->fail_rate, SN_LOG_ERROR, "cluster");
    if (t->loop) {
        ev_idle_stop(t->loop, &t->more);
        if (t->router)
            ev_io_stop(t->loop, &t->router_io);
    }
    while (t->conns) {
        sn_conn *c = t->conns;
        t->conns = c->next;
        if (t->loop)
            ev_io_stop(t->loop, &c->io);
        zmq_close(c->sock); /* linger: up to 1 s for a LEAVE to go out */
        free(c);
    }
    if (t->router)
        zmq_close(t->router);
    sn_zap_destroy(&t->zap); /* after the sockets, before the context */
    if (t->zctx)
        zmq_ctx_term(t->zctx);
    sn_curve_allow_destroy(&t->allow);
    sn_curve_keys_destroy(&t->keys);
    free(t);
}

static int zt_admits(sn_transport *base, const char *peer)
{
    zt *t = (zt *)base;
    uint8_t key[SN_CURVE_KEY_LEN];
    return !t->keys || sn_curve_allow_key_of(t->allow, peer, key) == SN_OK;
}

static int zt_readable(sn_transport *base, sn_conn *conn)
{
    (void)base;
    int events = 0;
    size_t len = sizeof events;
    return !conn->closing && zmq_getsockopt(conn->sock, ZMQ_EVENTS, &events, &len) == 0 &&
           (events & ZMQ_POLLIN);
}

static const sn_transport_ops zt_ops = {zt_connect, zt_close,  zt_send,  zt_answer,
                                        zt_drain,   zt_destroy, zt_admits, zt_readable};

sn_transport *sn_transport_zmq_new(const sn_opts *o, struct ev_loop *loop, sn_log *log,
                                   int *err)
{
    zt *t = calloc(1, sizeof *t);
    if (!t) {
        *err = SN_ENOMEM;
        return NULL;
    }
    t->base.ops = &zt_ops;
    t->o = o;
    t->log = log;
    t->fail_rate = (sn_log_rate){.per_second = 10, .what = "socket failures"};
    t->loop = loop;
    ev_idle_init(&t->more, on_more);
    sn_transport *base = &t->base;
    if (!(t->zctx = zmq_ctx_new())) {
        *err = SN_ENOMEM;
        sn_transport_destroy(&base);
        return NULL;
    }
    if (o->curve_secret) { /* before any socket: the ZAP handler must be there first */
        char why[1024];
        int rc = sn_curve_keys_load(o->curve_secret, &t->keys, why, sizeof why);
        if (rc == SN_OK && !o->curve_allow) {
            snprintf(why, sizeof why, "--curve-secret needs --curve-allow FILE: the public key "
                     "and name of every node (\"KEY NAME\" per line)");
            rc = SN_EINVAL;
        }
        if (rc == SN_OK)
            rc = sn_curve_allow_load(o->curve_allow, &t->allow, why, sizeof why);
        if (rc == SN_OK && !(t->zap = sn_zap_new(t->zctx, t->allow, log, &rc)))
            snprintf(why, sizeof why, "cannot start the ZAP handler: %s", sn_strerror(rc));
        if (rc != SN_OK) {
            sn_log_write(log, SN_LOG_ERROR, "cluster", "%s", why);
            *err = SN_EINVAL;
            sn_transport_destroy(&base);
            return NULL;
        }
        sn_log_write(log, SN_LOG_INFO, "cluster", "CurveZMQ on: %zu allowed keys",
                     sn_curve_allow_count(t->allow));
    }
    if (o->listen) {
        t->router = zmq_socket(t->zctx, ZMQ_ROUTER);
        if (!t->router) {
            sn_log_write(log, SN_LOG_ERROR, "cluster", "cannot make the listening socket: %s",
                         zmq_strerror(zmq_errno()));
            *err = SN_EIO;
            sn_transport_destroy(&base);
            return NULL;
        }
        int one = 1, linger = 1000, handshake = o->handshake_ms;
        int64_t maxmsg = o->frame_max;
        zmq_setsockopt(t->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
        zmq_setsockopt(t->router, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(t->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        zmq_setsockopt(t->router, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake);
        if (t->keys && sn_curve_server(t->router, t->keys) != SN_OK) {
            sn_log_write(log, SN_LOG_ERROR, "cluster", "this libzmq cannot enforce the ZAP "
                         "domain: refusing to run CurveZMQ that could fail open");
            *err = SN_ENOTSUP;
            sn_transport_destroy(&base);
            return NULL;
        }
        if (zmq_bind(t->router, o->listen) != 0) {
            sn_log_write(log, SN_LOG_ERROR, "cluster", "cannot listen on %s: %s", o->listen,
                         zmq_strerror(zmq_errno()));
            *err = SN_EIO;
            sn_transport_destroy(&base);
            return NULL;
        }
        watch(t, t->router, &t->router_io);
    }
    *err = SN_OK;
    return base;
}

/* The endpoint peers use to reach us: --listen, with a wildcard host made concrete. */
static void advertised(const char *listen, char *out, size_t cap)
{
    const char *host = strstr(listen, "://");
    host = host ? host + 3 : listen;
    const char *colon = strrchr(host, ':');
    if (!colon) {
        snprintf(out, cap, "%s", listen);
        return;
    }
    if ((colon - host == 1 && host[0] == '*') || strncmp(host, "0.0.0.0:", 8) == 0) {
        char name[200] = "localhost";
        gethostname(name, sizeof name - 1);
        snprintf(out, cap, "tcp://%s%s", name, colon);
        return;
    }
    snprintf(out, cap, "%s", listen);
}

void sn_transport_zmq_endpoint(const sn_opts *o, char *out, size_t cap)
{
    if (!o->listen)
        snprintf(out, cap, "%s", "");
    else if (o->advertise)
        snprintf(out, cap, "%s", o->advertise);
    else
        advertised(o->listen, out, cap);
}
