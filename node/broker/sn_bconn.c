#define _GNU_SOURCE /* accept4 */
/* sn_bconn: one connection's I/O on the loop thread. Its events reach the owner through
 * sn_bdeliver.c, which also stops reading while the owner's mailbox is full. A record is
 * freed only after the callback that closed it returns (bconn.dead), and not before its
 * events are posted. */
#include "sn_bconn.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_node.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { READ_CHUNK = 65536 };

uint64_t sn_bconn_new_id(sn_broker *b)
{
    uint32_t n = atomic_fetch_add(&b->next, 1) + 1;
    return (uint64_t)b->tag << 32 | n;
}

sn_log *sn_bconn_log(const bconn *c) { return c->b->log; }

double sn_bconn_now(sn_broker *b)
{
    unsigned it = ev_iteration(b->ev); /* counted just before the loop polls */
    if (it != b->now_iter || b->now == 0) {
        b->now = sn_clock_mono();
        b->now_iter = it;
    }
    return b->now;
}
const sn_broker_limits *sn_bconn_limits(const bconn *c) { return &c->b->lim; }
int sn_bconn_paused(const bconn *c) { return c->paused; }

ssize_t sn_bconn_recv(bconn *c, void *buf, size_t len)
{
    if (!c->ssl)
        return recv(c->fd, buf, len, 0);
    int f = 0;
    ssize_t n = sn_btls_recv(c->ssl, buf, len, &f);
    if (f & SN_BTLS_F_BROKEN)
        c->tls_broken = 1;
    if (f & SN_BTLS_F_WANT_WRITE) {
        c->tls_rw = 1;
        ev_io_start(c->b->ev, &c->wio);
    }
    return n;
}

ssize_t sn_bconn_send(bconn *c, const void *buf, size_t len, int more)
{
    if (!c->ssl)
        return send(c->fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    int f = 0;
    ssize_t n = sn_btls_send(c->ssl, buf, len, &f);
    if (f & SN_BTLS_F_BROKEN)
        c->tls_broken = 1;
    return n;
}

/* A healthy TLS session says goodbye (close_notify): the peer learns it is the end. */
static void tls_goodbye(bconn *c)
{
    if (c->ssl && !c->tls_hs && !c->tls_broken)
        sn_btls_shutdown(c->ssl);
}

void sn_bconn_shutdown_wr(bconn *c)
{
    tls_goodbye(c);
    shutdown(c->fd, SHUT_WR);
}

/* ---- TLS handshakes --------------------------------------------------------------------- */

/* One step of c's TLS handshake; once done, the connection goes on (sn_bconn_tls_up). A
 * failure closes c as "tls", logged at most every 10 s. */
static void tls_handshake(bconn *c)
{
    char why[256];
    switch (sn_btls_handshake(c->ssl, why, sizeof why)) {
    case SN_BTLS_DONE:
        c->tls_hs = 0;
        ev_io_stop(c->b->ev, &c->wio);
        sn_bconn_tls_up(c);
        return;
    case SN_BTLS_WANT_READ:
        ev_io_stop(c->b->ev, &c->wio);
        if (!c->paused)
            ev_io_start(c->b->ev, &c->rio);
        return;
    case SN_BTLS_WANT_WRITE:
        ev_io_start(c->b->ev, &c->wio);
        return;
    default:
        break;
    }
    unsigned long quiet;
    if (sn_btls_log_due(c->b->tls, &quiet))
        sn_log_write(c->b->log, SN_LOG_WARN, "broker", "socket %llu: TLS handshake failed: %s "
                     "(%lu more since the last such line, not logged)",
                     (unsigned long long)c->id, why, quiet);
    c->tls_broken = 1;
    sn_bconn_close(c, SN_BCLOSE_TLS, EPROTO, "TLS handshake failed: %s", why);
}

/* ---- closing ------------------------------------------------------------------------- */

static void conn_free_io(bconn *c)
{
    ev_io_stop(c->b->ev, &c->rio);
    ev_io_stop(c->b->ev, &c->wio);
    ev_timer_stop(c->b->ev, &c->flush);
    if (c->reason != SN_BCLOSE_ERROR && c->fd >= 0)
        tls_goodbye(c);
    sn_btls_free(&c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    sn_bws_free(c);
    free(c->in);
    free(c->out);
    free(c->ws_accept);
    c->in = c->out = NULL;
    c->ws_accept = NULL;
}

void sn_bconn_close(bconn *c, int reason, int err, const char *fmt, ...)
{
    if (c->dead)
        return;
    if (c->kind == SN_BURI_WS && !c->wsclose) {
        if (reason == SN_BCLOSE_OWNER)
            sn_bws_goodbye(c, 1011, "the actor serving this socket failed");
        else if (reason == SN_BCLOSE_SHUTDOWN)
            sn_bws_goodbye(c, 1001, "the node stops");
        else if (reason == SN_BCLOSE_IDLE)
            sn_bws_goodbye(c, 1001, "idle");
    }
    /* commits wait for the flusher: what a script committed before it closed goes out first,
     * as far as the socket takes it now */
    if (c->kind != SN_BURI_WS && c->state == BC_OPEN && c->fd >= 0 && c->out_off < c->out_len &&
        reason != SN_BCLOSE_ERROR && reason != SN_BCLOSE_SLOW && !c->tls_broken) {
        ssize_t n = sn_bconn_send(c, c->out + c->out_off, c->out_len - c->out_off, 0);
        if (n > 0 && c->l)
            atomic_fetch_add(&c->l->bytes_out, (uint64_t)n);
    }
    c->dead = 1;
    c->reason = (unsigned char)reason;
    c->err = err;
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    conn_free_io(c);
    if (c->l) {
        atomic_fetch_add(&c->l->closed_n[reason], 1);
        atomic_fetch_sub(&c->l->open, 1);
    }
    atomic_fetch_sub(&c->b->open, 1);
    sn_log_level lv = reason == SN_BCLOSE_PEER || reason == SN_BCLOSE_LOCAL ||
                              reason == SN_BCLOSE_SHUTDOWN ? SN_LOG_DEBUG : SN_LOG_INFO;
    if (reason != SN_BCLOSE_TLS) /* sn_btls logs those, at a bounded rate */
        sn_log_write(c->b->log, lv, "broker", "socket %llu closed (%s): %s",
                     (unsigned long long)c->id, sn_broker_reason_name(reason), why);
    if (reason != SN_BCLOSE_OWNER && reason != SN_BCLOSE_SHUTDOWN) {
        sn_msg *m = sn_bconn_event_new(SN_BEV_CLOSE, c->id, 0, 0, err, NULL, 0, NULL, 0, why,
                                       strlen(why));
        if (m) {
            m->session = 1;
            if (c->pend) {
                c->pend_tail->next = m;
                c->pend_tail = m;
            } else if (sn_node_post(c->b->node, c->actor, m, 1) != SN_OK) {
                sn_msg_destroy(&m);
            }
        }
    }
    if (!c->pend) { /* else it stays in the map (dead) until its events are delivered */
        ev_timer_stop(c->b->ev, &c->retry);
        sn_map_del(c->b->socks, c->id);
    }
    /* freed by the entry point that called us (sn_bconn_done), or by sn_bdeliver.c once
     * its events are posted */
}

/* Every loop callback on a connection ends here: a dead one is freed now. */
void sn_bconn_done(bconn *c)
{
    if (c->dead && !c->pend)
        free(c);
}

/* ---- tcp ----------------------------------------------------------------------------- */

static void flush_out(bconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = sn_bconn_send(c, c->out + c->out_off, c->out_len - c->out_off, 0);
        if (n > 0) {
            c->out_off += (size_t)n;
            if (c->l)
                atomic_fetch_add(&c->l->bytes_out, (uint64_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->b->ev, &c->wio);
            return;
        }
        sn_bconn_close(c, SN_BCLOSE_ERROR, errno, "write: %s", strerror(errno));
        return;
    }
    c->out_off = c->out_len = 0;
    ev_io_stop(c->b->ev, &c->wio);
}

void sn_bconn_want_write(bconn *c)
{
    ev_io_start(c->b->ev, &c->wio);
}

static int out_append(bconn *c, const void *hdr, size_t hl, const void *data, size_t len)
{
    size_t queued = c->out_len - c->out_off;
    if (queued + hl + len > c->b->lim.output) {
        sn_bconn_close(c, SN_BCLOSE_SLOW, 0, "slow consumer: %zu bytes queued, limit %zu "
                       "(broker_output)", queued + hl + len, c->b->lim.output);
        return SN_ELIMIT;
    }
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + hl + len > c->out_cap) {
        if (c->out_off) { /* compact */
            memmove(c->out, c->out + c->out_off, queued);
            c->out_len = queued;
            c->out_off = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 512; /* a greeting or a few frames: small */
        while (cap < c->out_len + hl + len)
            cap *= 2;
        unsigned char *p = realloc(c->out, cap);
        if (!p) {
            sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
            return SN_ENOMEM;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, hdr, hl);
    memcpy(c->out + c->out_len + hl, data, len);
    c->out_len += hl + len;
    return SN_OK;
}

/* The n whole frames at c->in[start..in_off) to the owner as one event (SN_BROKER_F_FRAMES):
 * one message, one post for what one read brought. */
static void frames_out(bconn *c, size_t start, size_t n)
{
    if (!n)
        return;
    size_t len = c->in_off - start;
    sn_msg *m = sn_bconn_event_new(SN_BEV_DATA, c->id, 0,
                                   SN_BROKER_F_FRAMES | (c->decode & SN_BROKER_F_MSGPACK), 0,
                                   NULL, 0, NULL, 0, c->in + start, len);
    if (!m) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
        return;
    }
    if (c->l) {
        atomic_fetch_add(&c->l->frames_in, n);
        atomic_fetch_add(&c->l->bytes_in, len - n * SN_BFRAME_HEADER);
    }
    c->last_io = sn_bconn_now(c->b);
    sn_bconn_deliver(c, m, 0);
}

static void tcp_packets(bconn *c)
{
    size_t max = c->l && c->l->in_max ? c->l->in_max : c->b->lim.frame;
    size_t start = c->in_off, n = 0; /* the frames read but not yet posted */
    while (!c->dead && !c->paused) {
        size_t frame;
        int r = sn_bframe_next(c->in + c->in_off, c->in_len - c->in_off, max, &frame);
        if (r == SN_ELIMIT || r == SN_EPROTO) /* the good frames before the bad one still
                                               * reach the script, before its close */
            frames_out(c, start, n);
        if (r == SN_ELIMIT) {
            sn_bconn_close(c, SN_BCLOSE_OVERSIZE, EMSGSIZE, "frame of %zu bytes over the "
                           "limit of %zu", frame, max);
            return;
        }
        if (r == SN_EPROTO) {
            sn_bconn_close(c, SN_BCLOSE_PROTOCOL, EPROTO, "frame length %zu below 4", frame);
            return;
        }
        if (r == 0) {
            frames_out(c, start, n);
            break;
        }
        c->in_off += frame;
        if (++n == SN_BROKER_BATCH) {
            frames_out(c, start, n);
            start = c->in_off;
            n = 0;
        }
    }
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
}

static void tcp_read(bconn *c)
{
    if (c->packet)
        tcp_packets(c);
    while (!c->dead && !c->paused) {
        if (c->packet) {
            size_t max = c->l && c->l->in_max ? c->l->in_max : c->b->lim.frame;
            if (c->in_off) {
                memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
                c->in_len -= c->in_off;
                c->in_off = 0;
            }
            if (c->in_cap < max + READ_CHUNK && c->in_len + READ_CHUNK > c->in_cap) {
                size_t cap = c->in_len + READ_CHUNK;
                unsigned char *p = realloc(c->in, cap);
                if (!p) {
                    sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
                    return;
                }
                c->in = p;
                c->in_cap = cap;
            }
            size_t room = c->in_cap - c->in_len;
            ssize_t n = sn_bconn_recv(c, c->in + c->in_len, room);
            if (n > 0) {
                c->in_len += (size_t)n;
                tcp_packets(c);
                if ((size_t)n < room && !sn_btls_pending(c->ssl))
                    return; /* drained: no second recv only to hear EAGAIN (a system call
                             * per read event); the next readiness brings more */
                continue;
            }
            if (n == 0) {
                sn_bconn_close(c, SN_BCLOSE_PEER, 0, "closed by the peer");
                return;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                sn_bconn_close(c, SN_BCLOSE_ERROR, errno, "read: %s", strerror(errno));
            return;
        }
        unsigned char buf[READ_CHUNK];
        ssize_t n = sn_bconn_recv(c, buf, sizeof buf);
        if (n > 0) {
            sn_bconn_event(c, SN_BEV_DATA, 0, buf, (size_t)n, NULL, 0);
            if ((size_t)n < sizeof buf && !sn_btls_pending(c->ssl))
                return; /* the next readiness brings more; others get their turn */
            continue;
        }
        if (n == 0) {
            sn_bconn_close(c, SN_BCLOSE_PEER, 0, "closed by the peer");
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            sn_bconn_close(c, SN_BCLOSE_ERROR, errno, "read: %s", strerror(errno));
        return;
    }
}

static void udp_read(bconn *c)
{
    unsigned char buf[65536];
    for (int i = 0; i < 64 && !c->dead && !c->paused; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(c->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        sn_bconn_event(c, SN_BEV_DATA, c->decode & SN_BROKER_F_MSGPACK, buf, (size_t)n, &from,
                       fl);
    }
}

void sn_bconn_read(bconn *c)
{
    if (c->dead || c->paused)
        return;
    if (c->tls_hs) {
        tls_handshake(c);
        return;
    }
    if (c->kind == SN_BURI_UDP)
        udp_read(c);
    else if (c->kind == SN_BURI_WS)
        c->state == BC_HANDSHAKE ? sn_bws_handshake(c) : sn_bws_read(c);
    else
        tcp_read(c);
}


static void on_read(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev, (void)revents;
    bconn *c = w->data;
    sn_bconn_read(c);
    sn_bconn_done(c);
}

static void on_write(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev, (void)revents;
    bconn *c = w->data;
    if (c->tls_rw) { /* a TLS read that had to write first */
        c->tls_rw = 0;
        sn_bconn_read(c);
    }
    if (c->dead)
        ;
    else if (c->tls_hs)
        tls_handshake(c);
    else if (c->state == BC_CONNECTING)
        sn_bconn_connected(c);
    else if (c->kind == SN_BURI_WS && c->ws)
        sn_bws_write(c);
    else
        flush_out(c);
    sn_bconn_done(c);
}

static void on_flush(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev, (void)revents;
    bconn *c = w->data;
    c->kind == SN_BURI_WS ? sn_bws_write(c) : flush_out(c);
    sn_bconn_done(c);
}

bconn *sn_bconn_new(sn_broker *b, blistener *l, int fd, uint64_t id, uint64_t actor,
                       const sn_buri *u)
{
    bconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->b = b;
    c->l = l;
    c->fd = fd;
    c->id = id;
    c->actor = actor;
    c->kind = (unsigned char)u->kind;
    c->packet = u->packet != 0;
    c->decode = (u->msgpack ? SN_BROKER_F_MSGPACK : 0) | (u->json ? SN_BROKER_F_JSON : 0);
    c->state = u->kind == SN_BURI_WS ? BC_HANDSHAKE : BC_OPEN;
    c->last_io = sn_clock_mono();
    c->expire_ms = (float)b->lim.idle_ms;
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_timer_init(&c->retry, sn_bconn_on_retry, 0, 0);
    ev_timer_init(&c->flush, on_flush, 0, 0);
    c->rio.data = c->wio.data = c->retry.data = c->flush.data = c;
    if (sn_map_put(b->socks, id, c) != SN_OK) {
        free(c);
        return NULL;
    }
    atomic_fetch_add(&b->open, 1);
    if (l)
        atomic_fetch_add(&l->open, 1);
    return c;
}

/* ---- listeners ----------------------------------------------------------------------- */

/* Limits hit are logged at most once every 10 s. */
static int limit_log(sn_broker *b)
{
    double now = sn_clock_mono();
    if (now - b->limit_logged < 10)
        return 0;
    b->limit_logged = now;
    return 1;
}

void sn_bconn_on_unpause(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)revents;
    blistener *l = w->data;
    if (!l->closed)
        ev_io_start(ev, &l->io);
}

void sn_bconn_on_accept(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)revents;
    blistener *l = w->data;
    sn_broker *b = l->b;
    for (int i = 0; i < 64; i++) {
        baddr peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(l->fd, &peer.sa, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (limit_log(b))
                    sn_log_write(b->log, SN_LOG_WARN, "broker", "accept refused (%s); "
                                 "accepting again in 100 ms (%zu open)", strerror(errno),
                                 atomic_load(&b->open));
                ev_io_stop(ev, &l->io);
                ev_timer_set(&l->pause, 0.1, 0);
                ev_timer_start(ev, &l->pause);
            }
            return;
        }
        atomic_fetch_add(&l->accepted, 1);
        if (atomic_load(&b->open) >= b->lim.conns || atomic_load(&l->open) >= b->lim.conns_listener) {
            int node = atomic_load(&b->open) >= b->lim.conns;
            if (limit_log(b))
                sn_log_write(b->log, SN_LOG_WARN, "broker", "connection refused: %s limit "
                             "of %zu reached", node ? "broker_conns (per node)"
                             : "broker_conns_listener", node ? b->lim.conns
                             : b->lim.conns_listener);
            atomic_fetch_add(&l->closed_n[SN_BCLOSE_LIMIT], 1);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bconn *c = sn_bconn_new(b, l, fd, sn_bconn_new_id(b), l->actor, &l->u);
        if (!c) {
            close(fd);
            continue;
        }
        c->peer = peer;
        c->peer_len = (unsigned char)(pl < sizeof peer ? pl : sizeof peer);
        socklen_t ll = sizeof c->local;
        c->local_len = getsockname(fd, &c->local.sa, &ll) == 0 && ll <= sizeof c->local
                           ? (unsigned char)ll : 0;
        if (l->u.tls && !(c->ssl = sn_btls_accept(b->tls, fd))) {
            sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
            sn_bconn_done(c);
            continue;
        }
        c->tls_hs = c->ssl != NULL;
        if (c->kind == SN_BURI_WS || c->ssl) { /* accepted once upgraded / TLS is up */
            c->state = BC_HANDSHAKE; /* one deadline bounds TLS and the upgrade together */
            c->deadline = c->last_io + b->lim.handshake_ms / 1000.0;
        } else {
            sn_msg *m = sn_bconn_event_new(SN_BEV_ACCEPT, c->id, l->id, c->decode, 0, &c->peer,
                                  c->peer_len, &c->local, c->local_len, NULL, 0);
            if (!m) {
                sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
                sn_bconn_done(c);
                continue;
            }
            sn_bconn_deliver(c, m, 0);
        }
        if (!c->dead && !c->paused)
            ev_io_start(ev, &c->rio);
        sn_bconn_done(c);
    }
}

void sn_bconn_accepted(bconn *c)
{
    c->deadline = 0;
    sn_msg *m = sn_bconn_event_new(SN_BEV_ACCEPT, c->id, c->l ? c->l->id : 0, c->decode, 0, &c->peer,
                          c->peer_len, &c->local, c->local_len, NULL, 0);
    if (!m) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
        return;
    }
    sn_bconn_deliver(c, m, 0);
}

/* ---- joined connections, commits ------------------------------------------------------ */

void sn_bconn_connected(bconn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    ev_io_stop(c->b->ev, &c->wio);
    if (err) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, err, "connect: %s", strerror(err));
        return;
    }
    if (c->ssl) { /* connected; now the TLS handshake, within broker_handshake */
        c->tls_hs = 1;
        c->state = BC_HANDSHAKE;
        c->deadline = sn_clock_mono() + c->b->lim.handshake_ms / 1000.0;
        tls_handshake(c);
        return;
    }
    sn_bconn_tls_up(c);
}

void sn_bconn_tls_up(bconn *c)
{
    if (c->l != &c->b->joins) { /* a client of our listener */
        if (c->kind == SN_BURI_WS) { /* its upgrade request comes next, maybe already here */
            sn_bconn_read(c);
            return;
        }
        c->state = BC_OPEN;
        sn_bconn_accepted(c);
        if (!c->dead && !c->paused)
            ev_io_start(c->b->ev, &c->rio);
        if (!c->dead && c->out_len > c->out_off)
            flush_out(c);
        sn_bconn_read(c); /* what came with the handshake */
        return;
    }
    if (c->kind == SN_BURI_WS && !c->ws) { /* a ws:// join: our upgrade request first */
        c->state = BC_HANDSHAKE;
        if (!c->ssl) /* a TLS join's deadline counts from the connect */
            c->deadline = sn_clock_mono() + c->b->lim.handshake_ms / 1000.0;
        ev_io_start(c->b->ev, &c->rio);
        flush_out(c);
        return;
    }
    sn_bconn_joined(c);
}

void sn_bconn_joined(bconn *c)
{
    c->state = BC_OPEN;
    c->deadline = 0;
    c->last_io = sn_clock_mono();
    socklen_t al = sizeof c->peer;
    c->peer_len = getpeername(c->fd, &c->peer.sa, &al) == 0 && al <= sizeof c->peer
                      ? (unsigned char)al : 0;
    al = sizeof c->local;
    c->local_len = getsockname(c->fd, &c->local.sa, &al) == 0 && al <= sizeof c->local
                       ? (unsigned char)al : 0;
    sn_msg *m = sn_bconn_event_new(SN_BEV_CONNECT, c->id, 0, c->decode, 0, &c->peer,
                                   c->peer_len, &c->local, c->local_len, NULL, 0);
    if (!m) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
        return;
    }
    sn_bconn_deliver(c, m, 1);
    if (!c->dead && !c->paused)
        ev_io_start(c->b->ev, &c->rio);
    if (!c->dead && c->out_len > c->out_off)
        flush_out(c);
}

void sn_bconn_commit(bconn *c, unsigned flags, const void *data, size_t len, const void *addr,
                     size_t addrlen)
{
    if (c->dead)
        return;
    c->last_io = sn_bconn_now(c->b);
    if (c->l)
        atomic_fetch_add(&c->l->frames_out, 1);
    if (c->kind == SN_BURI_UDP) {
        if (!addr || !addrlen) {
            addr = &c->peer;
            addrlen = c->peer_len;
        }
        if (addrlen && sendto(c->fd, data, len, 0, addr, (socklen_t)addrlen) > 0 && c->l)
            atomic_fetch_add(&c->l->bytes_out, len);
        return;
    }
    if (c->kind == SN_BURI_WS) {
        if (c->state != BC_OPEN)
            return;
        sn_bws_commit(c, flags, data, len);
        return;
    }
    unsigned char hdr[SN_BFRAME_HEADER];
    size_t hl = 0;
    if (c->packet) {
        size_t max = c->l && c->l->out_max ? c->l->out_max : c->b->lim.frame;
        if (len + SN_BFRAME_HEADER > max) {
            sn_log_write(c->b->log, SN_LOG_WARN, "broker", "socket %llu: a commit of %zu "
                         "bytes is over the frame limit of %zu: not sent",
                         (unsigned long long)c->id, len, max);
            return;
        }
        sn_bframe_header(hdr, len);
        hl = sizeof hdr;
    }
    if (out_append(c, hdr, hl, data, len) != SN_OK)
        return;
    if (c->state != BC_OPEN)
        return; /* sent once connected (and TLS is up) */
    if (c->commit_ms > 0) {
        if (!ev_is_active(&c->flush)) {
            ev_timer_set(&c->flush, c->commit_ms / 1000.0, 0);
            ev_timer_start(c->b->ev, &c->flush);
        }
        return;
    }
    if (!ev_is_active(&c->wio))
        sn_bconn_flush_later(c);
}

void sn_bconn_flush_later(bconn *c)
{
    sn_broker *b = c->b;
    if (c->dirty)
        return;
    if (sn_bconn_ids_push(&b->dirty, c->id)) { /* write now instead */
        c->kind == SN_BURI_WS ? sn_bws_write(c) : flush_out(c);
        return;
    }
    c->dirty = 1;
}

void sn_bconn_on_prepare(struct ev_loop *ev, ev_prepare *w, int revents)
{
    (void)ev, (void)revents;
    sn_broker *b = w->data;
    sn_bdeliver_flush(b); /* first: the owner's worker starts while the loop writes */
    /* by id: a socket closed meanwhile is gone from the map (or dead in it) */
    for (size_t i = 0, n = sn_bconn_ids_n(&b->dirty); i < n; i++) {
        bconn *c = sn_map_get(b->socks, sn_bconn_ids_at(&b->dirty, i));
        if (!c)
            continue;
        c->dirty = 0;
        if (c->dead)
            continue;
        c->kind == SN_BURI_WS ? sn_bws_write(c) : flush_out(c);
        sn_bconn_done(c);
    }
    sn_buf_reset(&b->dirty);
}

void sn_bconn_trim(bconn *c)
{
    if (c->out && c->out_off >= c->out_len) {
        c->b->trimmed += c->out_cap;
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_off = c->out_cap = 0;
    }
    if (c->in && c->in_off >= c->in_len && c->state == BC_OPEN) {
        c->b->trimmed += c->in_cap;
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_off = c->in_cap = 0;
    }
}

void sn_bconn_set_interval(bconn *c, double ms)
{
    c->commit_ms = ms > 0 ? (float)ms : 0;
}
