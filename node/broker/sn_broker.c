/* sn_broker: the broker's lifecycle, its listeners and joins, the commands other threads
 * queue by socket id, the sweep (handshake time, idle expiry, owners gone) and the counts.
 * Sockets are made on the calling thread, so a bind error returns at once; the loop thread
 * adopts them through a command. */
#include "sn_bconn.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_node.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

void sn_broker_limits_default(sn_broker_limits *l)
{
    *l = (sn_broker_limits){.conns = 100000, .conns_listener = 65536, .frame = 1 << 20,
                            .message = 1 << 20, .output = 4 << 20, .handshake_ms = 5000,
                            .idle_ms = 0};
}

uint32_t sn_broker_tag_of(const char *name)
{
    uint64_t h = sn_map_hash(name, strlen(name));
    uint32_t t = (uint32_t)(h ^ (h >> 20) ^ (h >> 40)) & 0xFFFFF;
    return t ? t : 1;
}

uint32_t sn_broker_tag(const sn_broker *b)
{
    return b->tag;
}

int sn_broker_event_read(const sn_msg *m, sn_broker_event *ev)
{
    if (m->kind != SN_MSG_BROKER || m->len < 15)
        return SN_EPROTO;
    const unsigned char *q = (const unsigned char *)m->data, *e = q + m->len;
    memset(ev, 0, sizeof *ev);
    ev->what = m->name;
    ev->socket = m->handle;
    ev->flags = *q++;
    memcpy(&ev->err, q, 4), q += 4;
    memcpy(&ev->listener, q, 8), q += 8;
    ev->peer_len = *q++;
    if ((size_t)(e - q) < ev->peer_len + 1)
        return SN_EPROTO;
    ev->peer = ev->peer_len ? q : NULL;
    q += ev->peer_len;
    ev->local_len = *q++;
    if ((size_t)(e - q) < ev->local_len)
        return SN_EPROTO;
    ev->local = ev->local_len ? q : NULL;
    q += ev->local_len;
    ev->data = q;
    ev->len = (size_t)(e - q);
    return SN_OK;
}

int sn_broker_frames_next(const sn_broker_event *ev, size_t *pos, const void **p, size_t *len)
{
    const unsigned char *d = ev->data;
    size_t frame;
    if (*pos >= ev->len || sn_bframe_next(d + *pos, ev->len - *pos, ev->len, &frame) != 1)
        return 0;
    *p = d + *pos + SN_BFRAME_HEADER;
    *len = frame - SN_BFRAME_HEADER;
    *pos += frame;
    return 1;
}

/* A command for the loop thread that adopts a socket or reclaims an address (rare). */
typedef struct bcmd {
    sn_loop_cmd cmd; /* first */
    sn_broker *b;
    int kind;        /* 1: adopt a listener; 2: adopt a joined socket; 3: reclaim */
    uint64_t id;
    double ms;
    blistener *l;    /* adopt */
    int fd;
    uint64_t actor;
    sn_buri u;
    struct sockaddr_storage addr;
    size_t addrlen;
    void *tls_ctx;   /* a tls:// join: its context, until the session takes it */
} bcmd;

/* An operation on a socket (every commit is one): as small as its payload, since a script
 * commits once per message; the udp destination, when given, precedes the payload. */
typedef struct bop {
    sn_loop_cmd cmd; /* first */
    sn_broker *b;
    uint64_t id;
    double ms;
    size_t len;
    unsigned char op, flags, addrlen;
    unsigned char data[]; /* addr[addrlen], then the payload[len] */
} bop;

/* Fills c's fields after its sn_loop_cmd and b (a lone command) or after its header (a
 * batch's record), then its address and payload. */
static void bop_fill(bop *c, uint64_t id, double ms, sn_broker_op op, unsigned flags,
                     const void *data, size_t len, const void *addr, size_t addrlen)
{
    c->id = id;
    c->ms = ms;
    c->len = len;
    c->op = (unsigned char)op;
    c->flags = (unsigned char)flags;
    c->addrlen = (unsigned char)addrlen;
    if (addrlen)
        memcpy(c->data, addr, addrlen);
    if (len)
        memcpy(c->data + addrlen, data, len);
}

/* A reclaim: the loop closes an owner's listener on an address, the caller waits (bounded). */
typedef struct reclaim {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, refs; /* the command and the waiter each hold one */
} reclaim;

static void reclaim_release(reclaim *r)
{
    pthread_mutex_lock(&r->mu);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
    }
}

static void cmd_free(bcmd *c)
{
    if (c->kind == 3) {
        reclaim_release((reclaim *)c->l);
        free(c);
        return;
    }
    if (c->fd >= 0)
        close(c->fd);
    sn_btls_ctx_free(c->tls_ctx);
    if (c->kind == 1)
        free(c->l);
    free(c);
}

/* At the loop's destroy, after the broker's: touches nothing but the command. */
static void cmd_drop(sn_loop_cmd *lc)
{
    cmd_free((bcmd *)lc);
}

static void close_listener(sn_broker *b, blistener *l, const char *why)
{
    l->closed = 1;
    ev_io_stop(b->ev, &l->io);
    ev_timer_stop(b->ev, &l->pause);
    close(l->fd);
    l->fd = -1;
    sn_log_write(b->log, SN_LOG_INFO, "broker", "%s closed: %s", l->uri, why);
}

static void run_op(sn_broker *b, const bop *c)
{
    const unsigned char *data = c->data + c->addrlen;
    bconn *k = sn_map_get(b->socks, c->id);
    if (k && k->dead)
        return; /* closed; its last events wait for room in the owner's mailbox */
    if (!k) {
        blistener *l = sn_map_get(b->lids, c->id);
        if (l && c->op == SN_BROKER_CLOSE && !l->closed && l->fd >= 0) { /* stops accepting */
            char why[160];
            snprintf(why, sizeof why, "%.*s", (int)c->len, (const char *)data);
            close_listener(b, l, why);
        }
        return;
    }
    switch (c->op) {
    case SN_BROKER_COMMIT:
        sn_bconn_commit(k, c->flags, data, c->len, c->addrlen ? c->data : NULL, c->addrlen);
        break;
    case SN_BROKER_CLOSE:
        if (k->kind == SN_BURI_WS && k->ws && k->state == BC_OPEN) {
            sn_bws_close(k, 1000, "closed by the server");
            k->reason = SN_BCLOSE_LOCAL;
        } else {
            sn_bconn_close(k, SN_BCLOSE_LOCAL, 0, "%.*s", (int)c->len, (const char *)data);
        }
        break;
    case SN_BROKER_EXPIRE: k->expire_ms = c->ms > 0 ? (float)c->ms : 0; break;
    case SN_BROKER_INTERVAL: sn_bconn_set_interval(k, c->ms); break;
    case SN_BROKER_INJECT:
        sn_bconn_event(k, SN_BEV_DATA, c->flags, data, c->len, NULL, 0);
        break;
    }
    sn_bconn_done(k);
}

static void run_bop(sn_loop_cmd *lc)
{
    bop *c = (bop *)lc;
    sn_broker *b = c->b;
    run_op(b, c);
    sn_loop_work(b->loop, -1);
    sn_loop_hold(b->loop);
    free(c);
}

static void drop_bop(sn_loop_cmd *lc)
{
    free(lc);
}

/* Runs after every command queued before it: a listener adopted by then is in the list. */
static void run_reclaim(sn_broker *b, bcmd *c)
{
    int closed = 0;
    pthread_mutex_lock(&b->mu);
    for (blistener *l = b->listeners; l; l = l->next)
        if (!l->closed && l->fd >= 0 && l->actor == c->actor && l->addrlen == c->addrlen &&
            !memcmp(&l->addr, &c->addr, c->addrlen)) {
            close_listener(b, l, "its owner restarted and listens again");
            closed = 1;
        }
    pthread_mutex_unlock(&b->mu);
    reclaim *r = (reclaim *)c->l;
    pthread_mutex_lock(&r->mu);
    r->done = 1 + closed;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void run_cmd(sn_loop_cmd *lc)
{
    bcmd *c = (bcmd *)lc;
    sn_broker *b = c->b;
    if (c->kind == 3) {
        run_reclaim(b, c);
    } else if (c->kind == 1) { /* a listener (tcp, ws) or a udp socket */
        blistener *l = c->l;
        c->l = NULL;
        if (c->u.kind == SN_BURI_UDP) {
            bconn *k = sn_bconn_new(b, l, c->fd, c->id, c->actor, &c->u);
            if (k) {
                c->fd = -1;
                ev_io_start(b->ev, &k->rio);
            }
        } else {
            l->fd = c->fd;
            c->fd = -1;
            ev_io_init(&l->io, sn_bconn_on_accept, l->fd, EV_READ);
            ev_timer_init(&l->pause, sn_bconn_on_unpause, 0, 0);
            l->io.data = l->pause.data = l;
            ev_io_start(b->ev, &l->io);
        }
        sn_map_put(b->lids, l->id, l);
        pthread_mutex_lock(&b->mu);
        l->next = b->listeners;
        b->listeners = l;
        pthread_mutex_unlock(&b->mu);
    } else { /* a joined socket, connecting */
        bconn *k = sn_bconn_new(b, &b->joins, c->fd, c->id, c->actor, &c->u);
        if (k) {
            c->fd = -1;
            k->state = BC_CONNECTING;
            k->deadline = sn_clock_mono() + c->ms / 1000.0;
            void *ctx = c->tls_ctx;
            c->tls_ctx = NULL;
            if (k->kind == SN_BURI_WS && sn_bws_client_prepare(k, &c->u) != SN_OK) {
                sn_btls_ctx_free(ctx);
                sn_bconn_close(k, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
                sn_bconn_done(k);
            } else if (ctx && !(k->ssl = sn_btls_connect(b->tls, k->fd, ctx, c->u.host,
                                                         !c->u.noverify))) {
                sn_bconn_close(k, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
                sn_bconn_done(k);
            } else {
                ev_io_start(b->ev, &k->wio);
            }
        }
    }
    if (c->kind == 1 || c->kind == 2) /* a standalone script's sockets stop cleanly too */
        sn_loop_catch_signals(b->loop);
    sn_loop_work(b->loop, -1);
    sn_loop_hold(b->loop);
    cmd_free(c);
}

static bcmd *cmd_new(sn_broker *b, int kind)
{
    bcmd *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cmd.run = run_cmd;
    c->cmd.drop = cmd_drop;
    c->b = b;
    c->kind = kind;
    c->fd = -1;
    return c;
}

static void cmd_send(sn_broker *b, bcmd *c)
{
    sn_loop_work(b->loop, 1);
    sn_loop_send(b->loop, &c->cmd);
}

int sn_broker_op_queue(sn_broker *b, sn_broker_op op, uint64_t id, unsigned flags, double ms,
                       const void *data, size_t len, const void *addr, size_t addrlen)
{
    if (sn_broker_id_tag(id) != b->tag)
        return SN_ENOENT;
    if (!addr || addrlen > sizeof(struct sockaddr_storage)) /* not an address: ignored */
        addrlen = 0;
    bop *c = malloc(sizeof *c + addrlen + len);
    if (!c)
        return SN_ENOMEM;
    c->cmd.run = run_bop;
    c->cmd.drop = drop_bop;
    c->b = b;
    bop_fill(c, id, ms, op, flags, data, len, addr, addrlen);
    sn_loop_work(b->loop, 1);
    sn_loop_send(b->loop, &c->cmd);
    return SN_OK;
}

/* A batch's command: the header, then records: a bop's fields (without its sn_loop_cmd) and
 * its bytes, each record starting 8-aligned. */
typedef struct bops {
    sn_loop_cmd cmd; /* first */
    sn_broker *b;
    size_t len;      /* bytes of records after the header */
    size_t cap;      /* bytes allocated (given back as a spare: sn_bspare_give) */
} bops;

enum { BOPS_HEAD = (sizeof(bops) + 7) & ~(size_t)7 };

static size_t rec_size(size_t addrlen, size_t len)
{
    return (sizeof(bop) + addrlen + len + 7) & ~(size_t)7;
}

static void run_bops(sn_loop_cmd *lc)
{
    bops *h = (bops *)lc;
    sn_broker *b = h->b;
    unsigned char *p = (unsigned char *)h + BOPS_HEAD, *e = p + h->len;
    while (p < e) {
        const bop *c = (const bop *)p; /* 8-aligned in a malloc'd block */
        run_op(b, c);
        p += rec_size(c->addrlen, c->len);
    }
    sn_loop_work(b->loop, -1);
    sn_loop_hold(b->loop);
    sn_bspare_give(b, (unsigned char *)h, h->cap);
}

int sn_broker_batch_add(sn_broker *b, sn_broker_batch *q, sn_broker_op op, uint64_t id,
                        unsigned flags, double ms, const void *data, size_t len,
                        const void *addr, size_t addrlen)
{
    if (sn_broker_id_tag(id) != b->tag)
        return SN_ENOENT;
    if (!addr || addrlen > sizeof(struct sockaddr_storage))
        addrlen = 0;
    size_t need = (q->buf ? q->len : BOPS_HEAD) + rec_size(addrlen, len);
    if (!q->buf)
        q->buf = sn_bspare_take(b, &q->cap);
    if (need > q->cap) {
        size_t cap = q->cap ? q->cap : SN_BROKER_BATCH_CAP; /* a read's frames and answers */
        while (cap < need)
            cap *= 2;
        unsigned char *p = realloc(q->buf, cap);
        if (!p)
            return SN_ENOMEM;
        q->buf = p;
        q->cap = cap;
    }
    if (!q->len)
        q->len = BOPS_HEAD;
    bop *c = (bop *)(q->buf + q->len);
    memset(c, 0, sizeof *c);
    bop_fill(c, id, ms, op, flags, data, len, addr, addrlen);
    q->len += rec_size(addrlen, len);
    q->n++;
    return SN_OK;
}

void sn_broker_batch_send(sn_broker *b, sn_broker_batch *q)
{
    if (!q->buf || q->len <= BOPS_HEAD)
        return;
    bops *h = (bops *)q->buf;
    h->cmd.run = run_bops;
    h->cmd.drop = drop_bop;
    h->b = b;
    h->len = q->len - BOPS_HEAD;
    h->cap = q->cap;
    *q = (sn_broker_batch){0};
    sn_loop_work(b->loop, 1);
    sn_loop_send(b->loop, &h->cmd);
}

void sn_broker_batch_fini(sn_broker_batch *q)
{
    free(q->buf);
    *q = (sn_broker_batch){0};
}

/* ---- listen, join -------------------------------------------------------------------- */

static struct addrinfo *resolve(const sn_buri *u, int passive, int *err_no, char *err,
                                size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = u->kind == SN_BURI_UDP ? SOCK_DGRAM : SOCK_STREAM,
                             .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *ai = NULL;
    const char *host = u->host[0] && strcmp(u->host, "*") ? u->host : NULL;
    int rc = getaddrinfo(host, u->port, &hints, &ai);
    if (rc) {
        *err_no = EADDRNOTAVAIL;
        snprintf(err, errlen, "cannot resolve '%s': %s", u->host, gai_strerror(rc));
        return NULL;
    }
    return ai;
}

static int os_fail(int *err_no, char *err, size_t errlen, const char *what, int fd)
{
    *err_no = errno;
    snprintf(err, errlen, "%s: %s", what, strerror(errno));
    if (fd >= 0)
        close(fd);
    return SN_EIO;
}

/* The address is taken; if by a listener of this same actor (its state restarted, the old
 * state's listener lingers), the loop closes that one: 1 when it did so in time. The caller
 * is a worker, never the loop thread, so waiting for the loop is safe; it is bounded. */
static int reclaim_address(sn_broker *b, uint64_t actor, const struct sockaddr *a, socklen_t al)
{
    if ((size_t)al > sizeof(struct sockaddr_storage))
        return 0;
    reclaim *r = calloc(1, sizeof *r);
    bcmd *c = cmd_new(b, 3);
    if (!r || !c) {
        free(r);
        free(c);
        return 0;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->refs = 2;
    c->l = (blistener *)r; /* kind 3 carries the reclaim here */
    c->actor = actor;
    memcpy(&c->addr, a, al);
    c->addrlen = al;
    cmd_send(b, c);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0)
            break;
    int closed = r->done > 1; /* the loop ran it (1) and closed one (2) */
    pthread_mutex_unlock(&r->mu);
    reclaim_release(r);
    return closed;
}

int sn_broker_listen(sn_broker *b, const sn_buri *u, uint64_t actor, uint64_t *id,
                     void *bound, size_t *bound_len, int *err_no, char *err, size_t errlen)
{
    if (u->tls && sn_btls_server_ready(b->tls, err, errlen) != SN_OK) {
        *err_no = EINVAL;
        return SN_EINVAL;
    }
    struct addrinfo *ai = resolve(u, 1, err_no, err, errlen);
    if (!ai)
        return SN_EIO;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return os_fail(err_no, err, errlen, "socket", -1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
        (errno != EADDRINUSE || !reclaim_address(b, actor, ai->ai_addr, ai->ai_addrlen) ||
         bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)) {
        freeaddrinfo(ai);
        return os_fail(err_no, err, errlen, "bind", fd);
    }
    if (u->kind == SN_BURI_UDP && ai->ai_family == AF_INET) { /* a multicast group: join it */
        struct in_addr a = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (IN_MULTICAST(ntohl(a.s_addr))) {
            struct ip_mreq mr = {.imr_multiaddr = a, .imr_interface.s_addr = htonl(INADDR_ANY)};
            if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
                freeaddrinfo(ai);
                return os_fail(err_no, err, errlen, "multicast join", fd);
            }
        }
    }
    freeaddrinfo(ai);
    if (u->kind != SN_BURI_UDP && listen(fd, 4096) < 0)
        return os_fail(err_no, err, errlen, "listen", fd);
    if (bound && bound_len) {
        socklen_t bl = (socklen_t)*bound_len;
        *bound_len = getsockname(fd, bound, &bl) == 0 ? bl : 0;
    }
    blistener *l = calloc(1, sizeof *l);
    bcmd *c = cmd_new(b, 1);
    if (!l || !c) {
        free(l);
        free(c);
        close(fd);
        *err_no = ENOMEM;
        snprintf(err, errlen, "out of memory");
        return SN_ENOMEM;
    }
    l->b = b;
    l->id = sn_bconn_new_id(b);
    l->actor = actor;
    l->u = *u;
    l->fd = -1;
    l->in_max = u->in_max;
    l->out_max = u->out_max;
    l->addrlen = sizeof l->addr;
    if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen) < 0)
        l->addrlen = 0;
    snprintf(l->uri, sizeof l->uri, "%s://%s:%s%s%s",
             u->kind == SN_BURI_TCP ? (u->tls ? "tls" : "tcp")
             : u->kind == SN_BURI_WS ? (u->tls ? "wss" : "ws") : "udp", u->host,
             u->port, u->kind == SN_BURI_WS ? u->path : "", u->packet ? "?packet" : "");
    c->l = l;
    c->fd = fd;
    c->id = l->id;
    c->actor = actor;
    c->u = *u;
    *id = l->id;
    if (!atomic_exchange(&b->limits_logged, 1)) /* once, when the broker is first used */
        sn_log_write(b->log, SN_LOG_INFO, "broker", "file limit (RLIMIT_NOFILE): %llu (was "
                     "%llu); broker_conns %zu per node, broker_conns_listener %zu",
                     (unsigned long long)b->nofile, (unsigned long long)b->nofile_was,
                     b->lim.conns, b->lim.conns_listener);
    sn_log_write(b->log, SN_LOG_INFO, "broker", "listening on %s (socket %llu)", l->uri,
                 (unsigned long long)l->id);
    cmd_send(b, c);
    return SN_OK;
}

int sn_broker_join(sn_broker *b, const sn_buri *u, uint64_t actor, double timeout_ms,
                   uint64_t *id, int *err_no, char *err, size_t errlen)
{
    if (u->kind == SN_BURI_UDP) {
        *err_no = EPROTONOSUPPORT;
        snprintf(err, errlen, "broker.join connects tcp://, tls://, ws:// and wss:// only");
        return SN_EINVAL;
    }
    void *ctx = NULL;
    if (u->tls && sn_btls_client_ctx(b->tls, u, &ctx, err, errlen) != SN_OK) {
        *err_no = EINVAL;
        return SN_EINVAL;
    }
    struct addrinfo *ai = resolve(u, 0, err_no, err, errlen);
    if (!ai) {
        sn_btls_ctx_free(ctx);
        return SN_EIO;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        sn_btls_ctx_free(ctx);
        return os_fail(err_no, err, errlen, "socket", -1);
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc < 0 && errno != EINPROGRESS) {
        sn_btls_ctx_free(ctx);
        return os_fail(err_no, err, errlen, "connect", fd);
    }
    bcmd *c = cmd_new(b, 2);
    if (!c) {
        sn_btls_ctx_free(ctx);
        close(fd);
        *err_no = ENOMEM;
        snprintf(err, errlen, "out of memory");
        return SN_ENOMEM;
    }
    c->fd = fd;
    c->id = sn_bconn_new_id(b);
    c->actor = actor;
    c->u = *u;
    c->ms = timeout_ms > 0 ? timeout_ms : 3000;
    c->tls_ctx = ctx;
    *id = c->id;
    cmd_send(b, c);
    return SN_OK;
}

/* ---- across nodes -------------------------------------------------------------------- */

/* [op u8][id u64][flags u8][ms f64][addrlen u8][addr][data] */
enum { REMOTE_HEAD = 19 };

int sn_broker_remote_pack(sn_broker_op op, uint64_t id, unsigned flags, double ms,
                          const void *data, size_t len, const void *addr, size_t addrlen,
                          void **out, size_t *outlen)
{
    if (addrlen > 255)
        return SN_EINVAL;
    unsigned char *p = malloc(REMOTE_HEAD + addrlen + len);
    if (!p)
        return SN_ENOMEM;
    p[0] = (unsigned char)op;
    memcpy(p + 1, &id, 8);
    p[9] = (unsigned char)flags;
    memcpy(p + 10, &ms, 8);
    p[18] = (unsigned char)addrlen;
    if (addrlen)
        memcpy(p + REMOTE_HEAD, addr, addrlen);
    if (len)
        memcpy(p + REMOTE_HEAD + addrlen, data, len);
    *out = p;
    *outlen = REMOTE_HEAD + addrlen + len;
    return SN_OK;
}

int sn_broker_remote_run(sn_broker *b, const void *payload, size_t len)
{
    const unsigned char *p = payload;
    if (len < REMOTE_HEAD || p[0] < SN_BROKER_COMMIT || p[0] > SN_BROKER_INJECT ||
        len < (size_t)REMOTE_HEAD + p[18])
        return SN_EPROTO;
    uint64_t id;
    double ms;
    memcpy(&id, p + 1, 8);
    memcpy(&ms, p + 10, 8);
    size_t al = p[18];
    return sn_broker_op_queue(b, (sn_broker_op)p[0], id, p[9], ms, p + REMOTE_HEAD + al,
                              len - REMOTE_HEAD - al, al ? p + REMOTE_HEAD : NULL, al);
}

/* ---- the sweep: handshakes, connects, idle sockets, owners gone ----------------------- */

/* Buffers of idle sockets freed (sn_bconn_trim) leave holes in the heap that RSS keeps; past
 * this many bytes freed the sweep hands the free pages of every arena back (malloc_trim),
 * which costs a walk of the heap, so once per burst rather than per socket. */
enum { TRIM_AFTER = 1 << 20 };

static void on_sweep(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev, (void)revents;
    sn_broker *b = w->data;
    double now = sn_clock_mono();
    uint64_t dead_owner = 0, live_owner = 0;
    size_t pos = 0;
    sn_map_item it;
    bconn *doomed[256];
    int nd = 0;
    const char *why[256];
    int reason[256];
    pthread_mutex_lock(&b->mu);
    for (blistener *l = b->listeners; l; l = l->next)
        l->q_acc = 0;
    b->joins.q_acc = 0;
    pthread_mutex_unlock(&b->mu);
    while (sn_map_next(b->socks, &pos, &it)) {
        bconn *c = it.value;
        if (c->dead)
            continue;
        if (c->l)
            c->l->q_acc += (c->out_len - c->out_off) + sn_bws_queued(c);
        if (now - c->last_io > 1.0)
            sn_bconn_trim(c);
        if (nd == 256)
            continue;
        int r = -1;
        const char *y = NULL;
        if (c->deadline && now > c->deadline && c->wsclose) {
            r = c->wsclose - 1;
            y = NULL; /* c->wswhy: what our close frame said */
        } else if (c->deadline && now > c->deadline) {
            r = c->state == BC_CONNECTING ? SN_BCLOSE_ERROR : SN_BCLOSE_HANDSHAKE;
            y = c->state == BC_CONNECTING ? "connect timed out"
                                          : "handshake not done in time (broker_handshake)";
        } else if (c->expire_ms > 0 && c->state == BC_OPEN &&
                   now - c->last_io > c->expire_ms / 1000.0) {
            r = SN_BCLOSE_IDLE;
            y = "idle past its expiry";
        } else if (c->actor != live_owner) {
            if (c->actor == dead_owner || !sn_node_actor_alive(b->node, c->actor)) {
                dead_owner = c->actor;
                r = SN_BCLOSE_OWNER;
                y = "the owning actor failed";
            } else {
                live_owner = c->actor;
            }
        }
        if (r >= 0) {
            doomed[nd] = c;
            why[nd] = y;
            reason[nd++] = r;
        }
    }
    for (int i = 0; i < nd; i++) { /* not while iterating: closing deletes from the map */
        bconn *c = doomed[i];
        int err = reason[i] == SN_BCLOSE_IDLE || c->state == BC_CONNECTING ? ETIMEDOUT : 0;
        if (reason[i] == SN_BCLOSE_OWNER) { /* the owner will never take what waits */
            for (sn_msg *m = c->pend, *next; m; m = next) {
                next = m->next;
                sn_msg_destroy(&m);
            }
            c->pend = c->pend_tail = NULL;
            ev_timer_stop(b->ev, &c->retry);
        }
        char text[160];
        snprintf(text, sizeof text, "%s", why[i] ? why[i] : c->wswhy ? c->wswhy : "closed");
        sn_bconn_close(c, reason[i], err, "%s", text);
        sn_bconn_done(c);
    }
    if (b->trimmed >= TRIM_AFTER) { /* the heap those buffers left is given back */
        b->trimmed = 0;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
    pthread_mutex_lock(&b->mu);
    atomic_store(&b->joins.queued_out, b->joins.q_acc);
    for (blistener *l = b->listeners; l; l = l->next)
        atomic_store(&l->queued_out, l->q_acc);
    for (blistener *l = b->listeners; l; l = l->next)
        if (!l->closed && l->fd >= 0 && !sn_node_actor_alive(b->node, l->actor))
            close_listener(b, l, "the owning actor failed");
    pthread_mutex_unlock(&b->mu);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static int inbox(void *ud, const void *p, size_t len)
{
    return sn_broker_remote_run(ud, p, len);
}

void sn_broker_limits_of(const sn_opts *o, sn_broker_limits *l)
{
    sn_broker_limits_default(l);
    if (o->broker_conns)
        l->conns = (size_t)o->broker_conns;
    if (o->broker_conns_listener)
        l->conns_listener = (size_t)o->broker_conns_listener;
    if (o->broker_frame)
        l->frame = (size_t)o->broker_frame;
    if (o->broker_message)
        l->message = (size_t)o->broker_message;
    if (o->broker_output)
        l->output = (size_t)o->broker_output;
    if (o->broker_handshake_ms)
        l->handshake_ms = o->broker_handshake_ms;
    if (o->broker_idle_ms)
        l->idle_ms = o->broker_idle_ms;
}

sn_broker *sn_broker_new(struct sn_node *n, sn_log *log, const sn_opts *o)
{
    sn_broker *b = calloc(1, sizeof *b);
    if (!b) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the broker: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    b->node = n;
    b->loop = sn_node_cmd_loop(n);
    b->ev = sn_node_loop(n);
    b->log = log;
    sn_broker_limits_of(o, &b->lim);
    b->tag = sn_broker_tag_of(sn_node_name(n));
    pthread_mutex_init(&b->mu, NULL);
    b->socks = sn_map_new(SN_MAP_U64);
    b->lids = sn_map_new(SN_MAP_U64);
    b->tls = sn_btls_new(o->broker_cert, o->broker_key, o->broker_ca);
    if (!b->socks || !b->lids || !b->tls) {
        sn_broker_destroy(&b);
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the broker: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    snprintf(b->joins.uri, sizeof b->joins.uri, "join");
    b->joins.b = b;
    b->joins.fd = -1;
    ev_timer_init(&b->sweep, on_sweep, 0.25, 0.25);
    b->sweep.data = b;
    ev_timer_start(b->ev, &b->sweep);
    ev_unref(b->ev); /* the sweep alone keeps nothing alive */
    ev_prepare_init(&b->flusher, sn_bconn_on_prepare);
    b->flusher.data = b;
    ev_prepare_start(b->ev, &b->flusher);
    ev_unref(b->ev); /* nor does the flusher */
    sn_node_inbox(n, SN_BROKER_STAGE, inbox, b);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        b->nofile_was = rl.rlim_cur;
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        b->nofile = rl.rlim_cur;
    }
    return b;
}

void sn_broker_destroy(sn_broker **bp)
{
    if (!bp || !*bp)
        return;
    sn_broker *b = *bp;
    *bp = NULL;
    if (b->socks) {
        size_t pos = 0;
        sn_map_item it;
        while (sn_map_count(b->socks)) {
            pos = 0;
            if (!sn_map_next(b->socks, &pos, &it))
                break;
            bconn *c = it.value;
            sn_msg *m = c->pend;
            while (m) {
                sn_msg *next = m->next;
                sn_msg_destroy(&m);
                m = next;
            }
            c->pend = c->pend_tail = NULL;
            if (c->dead) /* closed, its events were waiting: it is still in the map */
                sn_map_del(b->socks, c->id);
            else
                sn_bconn_close(c, SN_BCLOSE_SHUTDOWN, 0, "the node stops");
            ev_timer_stop(b->ev, &c->retry);
            free(c);
        }
    }
    if (b->ev) {
        ev_ref(b->ev);
        ev_timer_stop(b->ev, &b->sweep);
    }
    if (b->ev && ev_is_active(&b->flusher)) {
        ev_ref(b->ev);
        ev_prepare_stop(b->ev, &b->flusher);
    }
    sn_buf_fini(&b->dirty);
    if (b->ev && b->posts.len) /* the sockets are gone, and their events with them */
        ev_unref(b->ev);
    sn_buf_fini(&b->posts);
    blistener *l = b->listeners;
    while (l) {
        blistener *next = l->next;
        if (l->fd >= 0) {
            ev_io_stop(b->ev, &l->io);
            close(l->fd);
        }
        ev_timer_stop(b->ev, &l->pause);
        free(l);
        l = next;
    }
    sn_map_destroy(&b->socks);
    sn_map_destroy(&b->lids);
    sn_btls_destroy(&b->tls);
    sn_bspare_free(b);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
