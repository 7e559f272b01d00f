/* sn_cluster: one ROUTER listens and receives every frame addressed to this node; one DEALER
 * per peer carries every frame this node sends it (so each node has one listening socket and
 * one connection per peer). The handshake's answer (WELCOME, or an ERROR that refuses it)
 * goes back on the ROUTER to the joiner's DEALER, before the answering node has a DEALER of
 * its own to the joiner. Sends never block: DEALERs have a bounded queue (ZMQ_SNDHWM, the
 * peer queue) and are written with ZMQ_DONTWAIT, so a full peer is an error, not a silent
 * drop and not a stall (what ROUTER_MANDATORY gives a ROUTER).
 *
 * Failure detection is direct: every node heartbeats every member, and marks a member
 * suspect after `suspect` ms of silence and down after `down` ms more. Gossip (member lists
 * with incarnations) is for discovery: a node that joins through one seed learns everybody
 * and greets them. Every live node therefore converges on the same member list. */
#include "sn_cluster.h"
#include "sn_curve.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_router.h"
#include "sn_snapshot.h"
#include "sn_wire.h"
#include "sn_zap.h"

#include <ev.h>
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

enum { NAME_MAX_LEN = SN_ROUTER_NODE_MAX, STATUS_EVERY = 2 /* ticks */,
       KNOWN_SLOTS = 2048 /* bytecode hashes remembered as sent, per peer */ };

typedef enum pstate { P_ALIVE = 0, P_SUSPECT, P_DOWN, P_LEFT } pstate;
static const char *const state_names[] = {"alive", "suspect", "down", "left"};

typedef struct stage_count {
    char stage[256];
    uint32_t count;
} stage_count;

typedef struct peer {
    struct peer *next;
    char name[NAME_MAX_LEN];
    char endpoint[256];
    char http[128];
    uint64_t inc;
    pstate state;
    double last_heard;
    void *dealer;
    ev_io io;
    int io_started;
    uint64_t seq_out;           /* per pair: the last sequence number we sent it */
    uint64_t seq_in, seq_in_inc; /* the last one we got from it, and from which incarnation */
    stage_count *stages;        /* its registry as last announced */
    size_t nstages;
    uint64_t registry_version;
    char *status_json;          /* its status view as last gathered */
    size_t status_len;
    double status_at;
    unsigned char (*known)[16]; /* hashes of bytecode sent to it in full (a lossy set) */
    unsigned char *known_used;
    void *ctl;                  /* control frames (heartbeats, gossip, ...): their own
                                   connection, so a large message on a slow link does not
                                   hold a heartbeat back (reliability.md case 17) */
    ev_io ctl_io;
    size_t queued;              /* frames waiting in our outbox for it */
} peer;

typedef struct seed {
    struct seed *next;
    char endpoint[256];
    void *dealer;
    ev_io io;
    double next_try, backoff;
    int done; /* welcomed, or refused for good */
} seed;

typedef struct pending {
    struct pending *next;
    uint64_t session;
    uint64_t actor;
    char rid[256];
    char node[NAME_MAX_LEN];
    uint64_t inc;
    double deadline;
    int many;     /* a broadcast: every actor there answers; kept until its deadline */
    int answered; /* answers a broadcast got */
} pending;

typedef enum out_kind { OUT_MESSAGE, OUT_REPLY, OUT_LOCK, OUT_CODE_MISS } out_kind;

/* A frame queued by another thread; encoded on the loop thread, where sequence numbers are. */
typedef struct outbound {
    struct outbound *next;
    out_kind kind;
    char node[NAME_MAX_LEN];
    int mode;         /* MESSAGE: the wire mode; LOCK: the frame kind */
    uint64_t actor;   /* MESSAGE: the sender; REPLY: the requester; LOCK: the requester */
    uint64_t from;    /* REPLY: the actor that answered */
    uint64_t session, dst_inc;
    int status;
    uint32_t ms;
    char *stage, *msg, *reply, *src_stage, *text;
    char *payload;
    size_t len;
} outbound;

struct sn_cluster {
    struct sn_node *node;
    const sn_opts *o;
    sn_log *log;
    struct ev_loop *loop;
    char name[NAME_MAX_LEN];
    char cluster[128];
    char endpoint[256];
    char http[128];
    uint64_t inc;
    void *zctx;
    sn_curve_keys *keys;   /* CurveZMQ on: the cluster keypair */
    sn_curve_allow *allow;
    sn_zap *zap;
    void *router;
    ev_io router_io;
    ev_prepare prepare;
    ev_idle more; /* a drain stopped before EAGAIN: run the loop again without blocking */
    ev_timer tick;
    unsigned ticks;
    sn_wire_limits lim;
    lua_State *scratch; /* encodes (nil, "why") for failed replies; loop thread */

    pthread_mutex_t mu; /* peers (read by other threads), pending, outbox */
    peer *peers;
    seed *seeds;
    pending *pending;
    outbound *out_head, *out_tail;
    atomic_uint_fast64_t next_session;
    atomic_int registry_dirty;
    uint64_t registry_version;

    _Atomic uint64_t bytes_in, bytes_out, frames_in, frames_out, seq_gaps, seq_dups, refused;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- sending ---------------------------------------------------------------------------- */

/* Encodes f and sends it on sock (DONTWAIT), with an identity frame first when given. */
static int send_frame(sn_cluster *c, void *sock, const void *identity, size_t idlen,
                      const sn_wire_frame *f)
{
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    int rc = sn_wire_encode(f, &c->lim, &buf, err, sizeof err);
    if (rc != SN_OK) {
        sn_log_write(c->log, SN_LOG_ERROR, "cluster", "cannot encode %s: %s",
                     sn_wire_kind_name(f->kind), err);
        sn_buf_fini(&buf);
        return rc;
    }
    if (identity && zmq_send(sock, identity, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        sn_buf_fini(&buf);
        return SN_EFULL;
    }
    rc = zmq_send(sock, buf.data, buf.len, ZMQ_DONTWAIT) < 0 ? SN_EFULL : SN_OK;
    if (rc == SN_OK) {
        atomic_fetch_add(&c->bytes_out, buf.len);
        atomic_fetch_add(&c->frames_out, 1);
    }
    sn_buf_fini(&buf);
    return rc;
}

static int send_peer(sn_cluster *c, peer *p, const sn_wire_frame *f)
{
    int data = f->kind == SN_WIRE_MESSAGE || f->kind == SN_WIRE_REPLY;
    void *sock = data || !p->ctl ? p->dealer : p->ctl;
    return sock ? send_frame(c, sock, NULL, 0, f) : SN_ENOENT;
}

static void fill_hello(sn_cluster *c, sn_wire_frame *f, sn_wire_kind kind)
{
    sn_wire_frame_init(f, kind);
    f->u.hello.cluster = c->cluster;
    f->u.hello.node = c->name;
    f->u.hello.incarnation = c->inc;
    f->u.hello.version = SN_WIRE_VERSION;
    f->u.hello.endpoint = c->endpoint;
    f->u.hello.http = c->http;
    f->u.hello.software = "stage-node " SN_VERSION;
}

/* The member list (this node first) in a caller-freed array; lock held. */
static sn_wire_member *member_list(sn_cluster *c, uint32_t *n)
{
    uint32_t count = 1;
    for (peer *p = c->peers; p; p = p->next)
        count++;
    sn_wire_member *m = calloc(count, sizeof *m);
    if (!m) {
        *n = 0;
        return NULL;
    }
    m[0] = (sn_wire_member){.name = c->name, .endpoint = c->endpoint, .http = c->http,
                            .incarnation = c->inc, .state = SN_WIRE_ALIVE};
    uint32_t i = 1;
    for (peer *p = c->peers; p; p = p->next)
        m[i++] = (sn_wire_member){.name = p->name, .endpoint = p->endpoint, .http = p->http,
                                  .incarnation = p->inc, .state = (sn_wire_state)p->state};
    *n = i;
    return m;
}

static uint64_t view_digest(sn_cluster *c)
{
    uint64_t d = c->inc * 0x9E3779B97F4A7C15ull;
    for (peer *p = c->peers; p; p = p->next) {
        uint64_t h = 1469598103934665603ull;
        for (const char *s = p->name; *s; s++)
            h = (h ^ (uint8_t)*s) * 1099511628211ull;
        d ^= (h + p->inc * 31 + (uint64_t)p->state) * 0x9E3779B97F4A7C15ull;
    }
    return d;
}

/* ---- peers ------------------------------------------------------------------------------ */

static void on_socket(struct ev_loop *loop, ev_io *w, int revents);

static void watch_socket(sn_cluster *c, void *sock, ev_io *io, void *data)
{
    int fd;
    size_t fdlen = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &fdlen) != 0)
        return;
    ev_io_init(io, on_socket, fd, EV_READ);
    io->data = data;
    ev_io_start(c->loop, io);
}

static void *new_dealer(sn_cluster *c, const char *endpoint)
{
    void *d = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!d)
        return NULL;
    int hwm = c->o->peer_queue, linger = 1000, ivl = 200, ivl_max = c->o->join_retry_max_ms;
    int64_t maxmsg = c->o->frame_max;
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(d, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(d, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(d, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* No ZMTP heartbeats here: a heartbeat timeout makes ZeroMQ open a second connection
     * while the stalled first one may still deliver later, and frames would then arrive out
     * of order after a partition heals. Liveness is the cluster's own heartbeat's job. */
    if (c->keys && sn_curve_client(d, c->keys) != SN_OK) {
        sn_log_write(c->log, SN_LOG_ERROR, "cluster", "cannot set CurveZMQ on a connection to %s",
                     endpoint);
        zmq_close(d);
        return NULL;
    }
    if (zmq_connect(d, endpoint) != 0) {
        sn_log_write(c->log, SN_LOG_ERROR, "cluster", "cannot connect to %s: %s", endpoint,
                     zmq_strerror(zmq_errno()));
        zmq_close(d);
        return NULL;
    }
    return d;
}

static void close_dealer(sn_cluster *c, void **d, ev_io *io, int *started)
{
    if (started && *started) {
        ev_io_stop(c->loop, io);
        *started = 0;
    }
    if (*d) {
        int linger = 0;
        zmq_setsockopt(*d, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(*d);
        *d = NULL;
    }
}

static peer *find_peer(sn_cluster *c, const char *name)
{
    for (peer *p = c->peers; p; p = p->next) {
        if (strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

/* Replies to requests that can no longer come; lock NOT held. */
static void fail_pending(sn_cluster *c, const char *node, uint64_t inc_or_0, const char *why);

static void set_state(sn_cluster *c, peer *p, pstate s)
{
    if (p->state == s)
        return;
    sn_log_write(c->log, s == P_ALIVE ? SN_LOG_INFO : SN_LOG_WARN, "cluster", "member %s: %s -> %s",
                 p->name, state_names[p->state], state_names[s]);
    p->state = s;
    if (s == P_DOWN || s == P_LEFT)
        sn_router_drop_node(sn_node_router(c->node), p->name);
    if (s == P_ALIVE) /* its registry comes again */
        p->registry_version = 0;
}

/* Adds (or renews) a member; makes the DEALER to it. Lock held. */
static peer *add_peer(sn_cluster *c, const char *name, const char *endpoint, const char *http,
                      uint64_t inc)
{
    if (strcmp(name, c->name) == 0 || !*endpoint)
        return NULL;
    peer *p = find_peer(c, name);
    if (p && p->inc == inc)
        return p;
    if (p) { /* a new incarnation: a restarted process; the old one is gone */
        sn_log_write(c->log, SN_LOG_INFO, "cluster", "member %s restarted (incarnation %llu)",
                     name, (unsigned long long)inc);
        sn_router_drop_node(sn_node_router(c->node), p->name);
        p->inc = inc;
        p->seq_in = 0;
        p->seq_in_inc = inc;
        p->state = P_ALIVE;
        p->last_heard = now_s();
        p->registry_version = 0;
        if (p->known_used) /* a new process holds no bytecode */
            memset(p->known_used, 0, KNOWN_SLOTS);
        if (strcmp(p->endpoint, endpoint) != 0) {
            close_dealer(c, &p->dealer, &p->io, &p->io_started);
            int ctl_started = p->ctl != NULL;
            close_dealer(c, &p->ctl, &p->ctl_io, &ctl_started);
            snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
        }
    } else {
        p = calloc(1, sizeof *p);
        if (!p)
            return NULL;
        snprintf(p->name, sizeof p->name, "%s", name);
        snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
        p->inc = inc;
        p->seq_in_inc = inc;
        p->last_heard = now_s();
        p->next = c->peers;
        c->peers = p;
        sn_log_write(c->log, SN_LOG_INFO, "cluster", "member %s joined (%s)", name, endpoint);
    }
    snprintf(p->http, sizeof p->http, "%s", http ? http : "");
    if (!p->dealer) {
        p->dealer = new_dealer(c, p->endpoint);
        if (p->dealer) {
            watch_socket(c, p->dealer, &p->io, p);
            p->io_started = 1;
        }
    }
    if (!p->ctl && (p->ctl = new_dealer(c, p->endpoint)))
        watch_socket(c, p->ctl, &p->ctl_io, p);
    atomic_store(&c->registry_dirty, 1); /* it needs our registry */
    return p;
}

/* ---- pending requests ------------------------------------------------------------------- */

/* Delivers (nil, why) to handler rid of actor. Loop thread (uses the scratch state). */
static void deliver_error(sn_cluster *c, uint64_t actor, const char *rid, const char *from,
                          const char *why)
{
    lua_State *L = c->scratch;
    lua_settop(L, 0);
    lua_pushnil(L);
    lua_pushstring(L, why);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    sn_buf buf;
    sn_buf_init(&buf);
    char err[128];
    if (sn_snapshot_encode(L, 1, 2, &o, &buf, err, sizeof err) == SN_OK) {
        sn_msg *m = sn_msg_new_from(SN_MSG_SIGNAL, rid, NULL, "", from, 0, 0, buf.data, buf.len);
        if (m && sn_node_post(c->node, actor, m, 1) != SN_OK)
            sn_msg_destroy(&m);
    }
    sn_buf_fini(&buf);
    lua_settop(L, 0);
}

/* Takes out of the pending list every request for node (any node when NULL; of incarnation
 * inc unless 0) or due by deadline (when not 0), and answers each with (nil, why) unless it
 * is a broadcast that got an answer, or one that merely timed out. */
static void take_pending(sn_cluster *c, const char *node, uint64_t inc, double deadline,
                         const char *why)
{
    pending *out = NULL;
    pthread_mutex_lock(&c->mu);
    for (pending **pp = &c->pending; *pp;) {
        pending *q = *pp;
        int match = deadline > 0 ? q->deadline <= deadline
                                 : strcmp(q->node, node) == 0 && (!inc || q->inc == inc);
        if (match) {
            *pp = q->next;
            q->next = out;
            out = q;
        } else {
            pp = &q->next;
        }
    }
    pthread_mutex_unlock(&c->mu);
    while (out) {
        pending *q = out;
        out = q->next;
        int quiet = q->many && (q->answered || deadline > 0);
        if (!quiet)
            deliver_error(c, q->actor, q->rid, q->node, why);
        free(q);
    }
}

static void fail_pending(sn_cluster *c, const char *node, uint64_t inc, const char *why)
{
    take_pending(c, node, inc, 0, why);
}

static void expire_pending(sn_cluster *c, double now)
{
    take_pending(c, NULL, 0, now, "timeout");
}

static size_t known_slot(const unsigned char hash[16]);

/* ---- receiving -------------------------------------------------------------------------- */

static void handle_hello(sn_cluster *c, const sn_wire_hello *h, const void *id, size_t idlen)
{
    sn_wire_frame f;
    if (strcmp(h->cluster, c->cluster) != 0) {
        sn_log_write(c->log, SN_LOG_ERROR, "cluster", "refused %s (%s): cluster name mismatch: "
                     "this node is in '%s', it is in '%s'", h->node, h->endpoint, c->cluster,
                     h->cluster);
        atomic_fetch_add(&c->refused, 1);
        char text[512];
        snprintf(text, sizeof text, "cluster name mismatch: node %s is in cluster '%s', not '%s'",
                 c->name, c->cluster, h->cluster);
        sn_wire_frame_init(&f, SN_WIRE_ERROR);
        f.u.error.code = SN_WIRE_E_CLUSTER;
        f.u.error.text = text;
        send_frame(c, c->router, id, idlen, &f);
        return;
    }
    if (strcmp(h->node, c->name) == 0) {
        sn_log_write(c->log, SN_LOG_ERROR, "cluster", "refused a node at %s that uses this "
                     "node's own name '%s'", h->endpoint, c->name);
        sn_wire_frame_init(&f, SN_WIRE_ERROR);
        f.u.error.code = SN_WIRE_E_NAME;
        f.u.error.text = "node name already in use";
        send_frame(c, c->router, id, idlen, &f);
        return;
    }
    pthread_mutex_lock(&c->mu);
    peer *p = add_peer(c, h->node, h->endpoint, h->http, h->incarnation);
    if (p) {
        p->last_heard = now_s();
        if (p->state != P_ALIVE)
            set_state(c, p, P_ALIVE);
    }
    uint32_t n;
    sn_wire_member *m = member_list(c, &n);
    pthread_mutex_unlock(&c->mu);
    fill_hello(c, &f, SN_WIRE_WELCOME);
    f.u.hello.members = m;
    f.u.hello.nmembers = n;
    send_frame(c, c->router, id, idlen, &f);
    free(m);
}

/* Greets every member we do not know yet (they learn about us the same way). Lock held. */
static void learn_members(sn_cluster *c, const sn_wire_member *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, c->name) == 0)
            continue;
        peer *p = find_peer(c, m[i].name);
        if (m[i].state == SN_WIRE_LEFT && p && p->inc == m[i].incarnation) {
            set_state(c, p, P_LEFT);
            continue;
        }
        if (m[i].state != SN_WIRE_ALIVE || (p && p->inc >= m[i].incarnation))
            continue;
        p = add_peer(c, m[i].name, m[i].endpoint, m[i].http, m[i].incarnation);
        if (p) {
            sn_wire_frame f;
            fill_hello(c, &f, SN_WIRE_HELLO);
            send_peer(c, p, &f);
        }
    }
}

static void handle_registry(sn_cluster *c, const sn_wire_registry *r)
{
    pthread_mutex_lock(&c->mu);
    peer *p = find_peer(c, r->node);
    if (!p || p->inc != r->incarnation || p->state == P_DOWN || p->state == P_LEFT ||
        r->version <= p->registry_version) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    sn_router *router = sn_node_router(c->node);
    sn_router_drop_node(router, p->name);
    stage_count *v = r->nstages ? calloc(r->nstages, sizeof *v) : NULL;
    for (uint32_t i = 0; i < r->nstages; i++) {
        sn_router_set_remote(router, p->name, r->stages[i].stage, r->stages[i].actors);
        if (v) {
            snprintf(v[i].stage, sizeof v[i].stage, "%s", r->stages[i].stage);
            v[i].count = r->stages[i].actors;
        }
    }
    free(p->stages);
    p->stages = v;
    p->nstages = v ? r->nstages : 0;
    p->registry_version = r->version;
    pthread_mutex_unlock(&c->mu);
}

/* The per-pair sequence check of MESSAGE and REPLY frames (one counter per sender node and
 * incarnation): a number seen before is a duplicate, dropped; a jump is a gap, counted. */
static int accept_seq(sn_cluster *c, const char *node, uint64_t inc, uint64_t seq)
{
    int ok = 1;
    pthread_mutex_lock(&c->mu);
    peer *p = find_peer(c, node);
    if (p && seq) {
        p->last_heard = now_s();
        if (p->seq_in_inc != inc) {
            p->seq_in_inc = inc;
            p->seq_in = 0;
        }
        if (seq <= p->seq_in) {
            atomic_fetch_add(&c->seq_dups, 1);
            sn_log_write(c->log, SN_LOG_WARN, "cluster", "dropped a duplicate from %s: "
                         "sequence %llu, already at %llu", node, (unsigned long long)seq,
                         (unsigned long long)p->seq_in);
            ok = 0;
        } else {
            if (seq > p->seq_in + 1)
                atomic_fetch_add(&c->seq_gaps, seq - p->seq_in - 1);
            p->seq_in = seq;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void handle_message(sn_cluster *c, const sn_wire_message *msg, int trusted)
{
    if (!accept_seq(c, msg->src.node, msg->src.incarnation, msg->seq))
        return; /* never deliver twice */
    int status = SN_WIRE_OK;
    if (msg->dst.incarnation && msg->dst.incarnation != c->inc)
        status = SN_WIRE_NODE_DOWN; /* addressed to a process that is gone */
    else if ((status = sn_node_deliver(c->node, msg, trusted)) != SN_OK) /* SN_* to wire */
        status = status == SN_EFULL ? SN_WIRE_MAILBOX_FULL : SN_WIRE_NO_ROUTE;
    if (status != SN_WIRE_OK && msg->session) {
        char why[300];
        if (status == SN_WIRE_NO_ROUTE)
            snprintf(why, sizeof why, "no route to %s", msg->dst.stage);
        else
            snprintf(why, sizeof why, "%s", status == SN_WIRE_MAILBOX_FULL ? "mailbox full"
                                            : "node down");
        sn_msg m = {.src = msg->src.actor, .reply = msg->reply_id, .src_node = msg->src.node,
                    .src_inc = msg->src.incarnation, .session = msg->session};
        sn_cluster_reply(c, &m, 0, msg->dst.stage, status, why, NULL, 0);
    }
}

static void handle_reply(sn_cluster *c, const sn_wire_reply *r, int trusted)
{
    if (r->dst.incarnation && r->dst.incarnation != c->inc)
        return;
    if (!accept_seq(c, r->src.node, r->src.incarnation, r->seq))
        return;
    pthread_mutex_lock(&c->mu);
    pending *q = NULL;
    pending copy;
    for (pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->session == r->session) {
            q = *pp;
            if (q->many) { /* more answers may come: use a copy */
                q->answered++;
                copy = *q;
                q = &copy;
            } else {
                *pp = q->next;
            }
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (!q) /* timed out already, or not ours: at most once */
        return;
    if (r->status != SN_WIRE_OK) {
        deliver_error(c, q->actor, q->rid, r->src.node, r->error[0] ? r->error : "failed");
    } else {
        sn_msg *m = sn_msg_new_from(SN_MSG_SIGNAL, q->rid, NULL, r->src.stage, r->src.node,
                                    r->src.incarnation, 0, r->payload.data, r->payload.len);
        if (m) {
            m->src = r->src.actor;
            if (!trusted)
                m->flags |= SN_MSG_F_UNTRUSTED;
            if (sn_node_post(c->node, q->actor, m, 1) != SN_OK)
                sn_msg_destroy(&m);
        }
    }
    if (q != &copy)
        free(q);
}

static void handle_frame(sn_cluster *c, const char *data, size_t len, const void *id,
                         size_t idlen, int trusted)
{
    atomic_fetch_add(&c->bytes_in, len);
    atomic_fetch_add(&c->frames_in, 1);
    sn_wire_frame f;
    char err[300];
    int rc = sn_wire_decode(data, len, &c->lim, &f, err, sizeof err);
    if (rc != SN_OK) {
        int version;
        sn_wire_kind kind;
        int peek = sn_wire_peek(data, len, &version, &kind);
        sn_log_write(c->log, SN_LOG_WARN, "cluster", "dropped a frame: %s", err);
        if (id && peek == SN_ENOTSUP && version != SN_WIRE_VERSION) { /* tell it, too */
            char text[300];
            snprintf(text, sizeof text, "protocol version mismatch: node %s speaks version %d, "
                     "not %d", c->name, SN_WIRE_VERSION, version);
            sn_wire_frame e;
            sn_wire_frame_init(&e, SN_WIRE_ERROR);
            e.u.error.code = SN_WIRE_E_VERSION;
            e.u.error.text = text;
            send_frame(c, c->router, id, idlen, &e);
        }
        atomic_fetch_add(&c->refused, 1);
        return;
    }
    double now = now_s();
    switch (f.kind) {
    case SN_WIRE_HELLO:
        if (id)
            handle_hello(c, &f.u.hello, id, idlen);
        break;
    case SN_WIRE_WELCOME:
        if (strcmp(f.u.hello.cluster, c->cluster) != 0)
            break;
        pthread_mutex_lock(&c->mu);
        for (seed *s = c->seeds; s; s = s->next) {
            if (!s->done && strcmp(s->endpoint, f.u.hello.endpoint) == 0)
                s->done = 1;
        }
        peer *wp = add_peer(c, f.u.hello.node, f.u.hello.endpoint, f.u.hello.http,
                            f.u.hello.incarnation);
        if (wp) {
            wp->last_heard = now;
            set_state(c, wp, P_ALIVE);
        }
        learn_members(c, f.u.hello.members, f.u.hello.nmembers);
        pthread_mutex_unlock(&c->mu);
        break;
    case SN_WIRE_ERROR:
        sn_log_write(c->log, SN_LOG_ERROR, "cluster", "refused by a peer: %s", f.u.error.text);
        if (f.u.error.code == SN_WIRE_E_CLUSTER || f.u.error.code == SN_WIRE_E_VERSION ||
            f.u.error.code == SN_WIRE_E_NAME) {
            pthread_mutex_lock(&c->mu); /* stop greeting the seeds that refused us */
            for (seed *s = c->seeds; s; s = s->next)
                s->done = s->done || !id;
            pthread_mutex_unlock(&c->mu);
        }
        break;
    case SN_WIRE_HEARTBEAT: {
        pthread_mutex_lock(&c->mu);
        peer *p = find_peer(c, f.u.heartbeat.node);
        if (p && p->inc == f.u.heartbeat.incarnation && p->state != P_LEFT) {
            p->last_heard = now;
            if (p->state != P_ALIVE)
                set_state(c, p, P_ALIVE);
            if (f.u.heartbeat.digest != view_digest(c)) { /* our views differ: gossip */
                uint32_t n;
                sn_wire_member *m = member_list(c, &n);
                sn_wire_frame g;
                sn_wire_frame_init(&g, SN_WIRE_GOSSIP);
                g.u.gossip.node = c->name;
                g.u.gossip.incarnation = c->inc;
                g.u.gossip.members = m;
                g.u.gossip.nmembers = n;
                send_peer(c, p, &g);
                free(m);
            }
            if (f.u.heartbeat.registry_version > p->registry_version)
                atomic_store(&c->registry_dirty, 1);
        } else if (!p || p->inc < f.u.heartbeat.incarnation) {
            /* unknown, or restarted: it will greet us; meanwhile nothing */
        }
        pthread_mutex_unlock(&c->mu);
        break;
    }
    case SN_WIRE_GOSSIP:
        pthread_mutex_lock(&c->mu);
        learn_members(c, f.u.gossip.members, f.u.gossip.nmembers);
        pthread_mutex_unlock(&c->mu);
        break;
    case SN_WIRE_REGISTRY: handle_registry(c, &f.u.registry); break;
    case SN_WIRE_MESSAGE: handle_message(c, &f.u.message, trusted); break;
    case SN_WIRE_REPLY: handle_reply(c, &f.u.reply, trusted); break;
    case SN_WIRE_LEAVE: {
        pthread_mutex_lock(&c->mu);
        peer *p = find_peer(c, f.u.leave.node);
        int gone = p && p->inc == f.u.leave.incarnation;
        if (gone)
            set_state(c, p, P_LEFT);
        pthread_mutex_unlock(&c->mu);
        if (gone)
            fail_pending(c, f.u.leave.node, 0, "node down");
        break;
    }
    case SN_WIRE_STATUS_REQ: {
        char *json = NULL;
        size_t jlen = 0;
        if (sn_node_status_self(c->node, &json, &jlen) == SN_OK) {
            sn_wire_frame s;
            sn_wire_frame_init(&s, SN_WIRE_STATUS);
            s.u.status.node = c->name;
            s.u.status.incarnation = c->inc;
            s.u.status.request = f.u.status.request;
            s.u.status.payload = (sn_wire_bytes){json, jlen};
            pthread_mutex_lock(&c->mu);
            peer *p = find_peer(c, f.u.status.node);
            if (p)
                send_peer(c, p, &s);
            pthread_mutex_unlock(&c->mu);
        }
        free(json);
        break;
    }
    case SN_WIRE_STATUS: {
        pthread_mutex_lock(&c->mu);
        peer *p = find_peer(c, f.u.status.node);
        char *copy = p ? malloc(f.u.status.payload.len + 1) : NULL;
        if (copy) {
            memcpy(copy, f.u.status.payload.data, f.u.status.payload.len);
            copy[f.u.status.payload.len] = '\0';
            free(p->status_json);
            p->status_json = copy;
            p->status_len = f.u.status.payload.len;
            p->status_at = now;
        }
        pthread_mutex_unlock(&c->mu);
        break;
    }
    case SN_WIRE_LOCK_ACQUIRE:
    case SN_WIRE_LOCK_EXTEND:
    case SN_WIRE_LOCK_RELEASE: { /* this node is the lock's home */
        const sn_wire_lock *k = &f.u.lock;
        sn_lock_op op = f.kind == SN_WIRE_LOCK_ACQUIRE  ? SN_LOCK_ACQUIRE
                        : f.kind == SN_WIRE_LOCK_EXTEND ? SN_LOCK_EXTEND
                                                        : SN_LOCK_RELEASE;
        sn_node_lock_at_home(c->node, op, k->lock, k->addr.node, k->addr.actor, k->handler,
                             k->payload.data, k->payload.len, k->ms);
        break;
    }
    case SN_WIRE_LOCK_GRANT: { /* our actor's turn: its handler gets the values */
        const sn_wire_lock *k = &f.u.lock;
        if (k->addr.incarnation && k->addr.incarnation != c->inc)
            break;
        sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, k->handler, NULL, NULL, k->payload.data,
                               k->payload.len);
        if (m) {
            if (!trusted)
                m->flags |= SN_MSG_F_UNTRUSTED;
            if (sn_node_post(c->node, k->addr.actor, m, 1) != SN_OK)
                sn_msg_destroy(&m);
        }
        break;
    }
    case SN_WIRE_CODE_MISS: { /* a peer lost bytecode we believe it holds: forget it */
        pthread_mutex_lock(&c->mu);
        for (peer *p = c->peers; p; p = p->next) { /* the frame does not say which peer */
            size_t k = known_slot(f.u.code_miss.hash);
            if (p->known_used && p->known_used[k] &&
                memcmp(p->known[k], f.u.code_miss.hash, 16) == 0)
                p->known_used[k] = 0;
        }
        pthread_mutex_unlock(&c->mu);
        break;
    }
    default:
        break; /* LOCK_DENY: not sent by this build */
    }
    sn_wire_frame_fini(&f);
}

/* Reads everything a socket holds. ZMQ_FD is edge-like: always drain until EAGAIN. */
static void drain(sn_cluster *c, void *sock, int is_router)
{
    for (int budget = 0; budget < 10000; budget++) { /* until EAGAIN: the FD is edge-like */
        zmq_msg_t part[2];
        int nparts = 0, more = 1;
        int bad = 0;
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
            if (nparts < 2)
                part[nparts++] = m;
            else {
                zmq_msg_close(&m); /* a frame of more parts than we use: ignore the rest */
                bad = 1;
            }
        }
        if (!bad && is_router && nparts == 2) {
            /* Bytecode is trusted from an authenticated peer, or from the real source address
             * of the connection being loopback (never from what a peer says of itself). */
            const char *from = zmq_msg_gets(&part[1], "Peer-Address");
            int trusted = sn_curve_trust_bytecode(c->keys != NULL, from, c->o->insecure) == SN_OK;
            handle_frame(c, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]),
                         zmq_msg_data(&part[0]), zmq_msg_size(&part[0]), trusted);
        } else if (!bad && !is_router && nparts == 1) {
            handle_frame(c, zmq_msg_data(&part[0]), zmq_msg_size(&part[0]), NULL, 0, 0);
        }
        for (int i = 0; i < nparts; i++)
            zmq_msg_close(&part[i]);
    }
    /* the budget ran out before EAGAIN: the FD will not signal again, so come back at once */
    if (!ev_is_active(&c->more))
        ev_idle_start(c->loop, &c->more);
}

static void drain_all(sn_cluster *c)
{
    if (c->router)
        drain(c, c->router, 1);
    for (peer *p = c->peers; p; p = p->next) {
        if (p->dealer)
            drain(c, p->dealer, 0);
        if (p->ctl)
            drain(c, p->ctl, 0);
    }
    for (seed *s = c->seeds; s; s = s->next) {
        if (s->dealer)
            drain(c, s->dealer, 0);
    }
}

static void on_socket(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* the prepare watcher drains every socket before the loop sleeps */
}

static void on_more(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w); /* the prepare watcher drains again before the next wait */
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    sn_cluster *c = w->data;
    sn_cluster_flush(c);
    drain_all(c);
}

/* ---- the heartbeat tick ----------------------------------------------------------------- */

static void send_registry(sn_cluster *c)
{
    size_t cap = 4096, n = 0;
    sn_wire_stage *v = malloc(cap * sizeof *v);
    char (*names)[256] = malloc(cap * sizeof *names);
    if (!v || !names) {
        free(v);
        free(names);
        return;
    }
    n = sn_node_local_stages(c->node, names, v, cap);
    c->registry_version++;
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_REGISTRY);
    f.u.registry.node = c->name;
    f.u.registry.incarnation = c->inc;
    f.u.registry.version = c->registry_version;
    f.u.registry.stages = v;
    f.u.registry.nstages = (uint32_t)n;
    for (peer *p = c->peers; p; p = p->next) {
        if (p->state == P_ALIVE || p->state == P_SUSPECT)
            send_peer(c, p, &f);
    }
    free(v);
    free(names);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sn_cluster *c = w->data;
    double now = now_s();
    double suspect = c->o->suspect_ms / 1000.0, down = c->o->down_ms / 1000.0;
    c->ticks++;
    char downs[64][NAME_MAX_LEN];
    int ndown = 0;
    pthread_mutex_lock(&c->mu);
    sn_wire_frame hb;
    sn_wire_frame_init(&hb, SN_WIRE_HEARTBEAT);
    hb.u.heartbeat.node = c->name;
    hb.u.heartbeat.incarnation = c->inc;
    hb.u.heartbeat.counter = c->ticks;
    hb.u.heartbeat.digest = view_digest(c);
    hb.u.heartbeat.registry_version = c->registry_version;
    sn_wire_frame sr;
    sn_wire_frame_init(&sr, SN_WIRE_STATUS_REQ);
    sr.u.status.node = c->name;
    sr.u.status.incarnation = c->inc;
    sr.u.status.request = c->ticks;
    for (peer *p = c->peers; p; p = p->next) {
        if (p->state == P_LEFT)
            continue;
        send_peer(c, p, &hb); /* down members too: a healed partition finds itself */
        double silent = now - p->last_heard;
        if (p->state == P_ALIVE && silent > suspect)
            set_state(c, p, P_SUSPECT);
        if (p->state == P_SUSPECT && silent > suspect + down) {
            set_state(c, p, P_DOWN);
            if (ndown < 64)
                snprintf(downs[ndown++], NAME_MAX_LEN, "%s", p->name);
        }
        if (p->state == P_ALIVE && c->ticks % STATUS_EVERY == 0)
            send_peer(c, p, &sr);
    }
    for (seed *s = c->seeds; s; s = s->next) { /* joining: greet, with backoff */
        if (s->done || now < s->next_try)
            continue;
        sn_wire_frame h;
        fill_hello(c, &h, SN_WIRE_HELLO);
        send_frame(c, s->dealer, NULL, 0, &h);
        s->next_try = now + s->backoff;
        if (s->backoff < c->o->join_retry_max_ms / 1000.0)
            s->backoff *= 2;
        sn_log_write(c->log, SN_LOG_DEBUG, "cluster", "greeting seed %s", s->endpoint);
    }
    int dirty = atomic_exchange(&c->registry_dirty, 0) || c->ticks % 5 == 0;
    if (dirty)
        send_registry(c);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < ndown; i++)
        fail_pending(c, downs[i], 0, "node down");
    expire_pending(c, now);
    drain_all(c);
}

/* ---- outbound from other threads -------------------------------------------------------- */

static void free_out(outbound *o)
{
    free(o->stage);
    free(o->msg);
    free(o->reply);
    free(o->src_stage);
    free(o->text);
    free(o->payload);
    free(o);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void enqueue(sn_cluster *c, outbound *o)
{
    pthread_mutex_lock(&c->mu);
    int first = c->out_head == NULL; /* else a wake-up is on its way already */
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    pthread_mutex_unlock(&c->mu);
    if (first)
        sn_node_wake(c->node);
}

int sn_cluster_send(sn_cluster *c, const char *node, int mode, const char *stage,
                    const char *msg, const char *reply_rid, uint64_t src_actor,
                    const char *src_stage, const void *payload, size_t len)
{
    pthread_mutex_lock(&c->mu);
    peer *p = find_peer(c, node);
    int rc = !p || p->state == P_DOWN || p->state == P_LEFT ? SN_ENOENT
             : p->queued >= (size_t)c->o->peer_queue          ? SN_EFULL
                                                              : SN_OK;
    uint64_t inc = p ? p->inc : 0;
    if (rc == SN_OK)
        p->queued++;
    pthread_mutex_unlock(&c->mu);
    if (rc != SN_OK)
        return rc;
    outbound *o = calloc(1, sizeof *o);
    if (o) {
        o->kind = OUT_MESSAGE;
        snprintf(o->node, sizeof o->node, "%s", node);
        o->mode = mode;
        o->actor = src_actor;
        o->dst_inc = inc;
        o->stage = strdup(stage);
        o->msg = strdup(msg);
        o->reply = dup_or_null(reply_rid);
        o->src_stage = strdup(src_stage ? src_stage : "");
        o->payload = malloc(len ? len : 1);
        o->len = len;
    }
    if (!o || !o->stage || !o->msg || !o->src_stage || !o->payload ||
        (reply_rid && !o->reply)) {
        if (o)
            free_out(o);
        pthread_mutex_lock(&c->mu);
        if ((p = find_peer(c, node)))
            p->queued--;
        pthread_mutex_unlock(&c->mu);
        return SN_ENOMEM;
    }
    if (len)
        memcpy(o->payload, payload, len);
    if (reply_rid) { /* the reply, or its failure, comes back to rid */
        pending *q = calloc(1, sizeof *q);
        if (q) {
            q->session = atomic_fetch_add(&c->next_session, 1);
            q->actor = src_actor;
            snprintf(q->rid, sizeof q->rid, "%s", reply_rid);
            snprintf(q->node, sizeof q->node, "%s", node);
            q->inc = inc;
            q->deadline = now_s() + c->o->reply_timeout_ms / 1000.0;
            q->many = mode == SN_WIRE_ALL;
            o->session = q->session;
            pthread_mutex_lock(&c->mu);
            q->next = c->pending;
            c->pending = q;
            pthread_mutex_unlock(&c->mu);
        }
    }
    enqueue(c, o);
    return SN_OK;
}

void sn_cluster_reply(sn_cluster *c, const sn_msg *m, uint64_t from_actor, const char *stage,
                      int status, const char *text, const void *payload, size_t len)
{
    outbound *o = calloc(1, sizeof *o);
    if (!o)
        return;
    o->kind = OUT_REPLY;
    snprintf(o->node, sizeof o->node, "%s", m->src_node);
    o->actor = m->src; /* the requester, on that node */
    o->from = from_actor;
    o->dst_inc = m->src_inc;
    o->session = m->session;
    o->status = status;
    o->stage = strdup(stage ? stage : "");
    o->reply = strdup(m->reply ? m->reply : "");
    o->text = dup_or_null(text);
    o->payload = malloc(len ? len : 1);
    o->len = len;
    if (!o->stage || !o->reply || !o->payload || (text && !o->text)) {
        free_out(o);
        return;
    }
    if (len)
        memcpy(o->payload, payload, len);
    enqueue(c, o);
}

/* Sends one queued frame. SN_EFULL: the peer's ZeroMQ queue is full right now; the frame
 * stays queued (nothing consumed) and goes out when the peer drains. Otherwise the frame
 * is done with: sent, or (peer down) answered as failed. */
static int send_out(sn_cluster *c, outbound *o)
{
    pthread_mutex_lock(&c->mu);
    peer *p = find_peer(c, o->node);
    int rc = SN_ENOENT;
    if (p && p->state != P_DOWN && p->state != P_LEFT) {
        sn_wire_frame f;
        if (o->kind == OUT_MESSAGE) {
            sn_wire_frame_init(&f, SN_WIRE_MESSAGE);
            sn_wire_message *m = &f.u.message;
            m->src = (sn_wire_addr){c->name, c->inc, o->actor, o->src_stage};
            m->dst = (sn_wire_addr){p->name, o->dst_inc, 0, o->stage};
            m->mode = (sn_wire_mode)o->mode;
            m->msg_id = o->msg;
            m->reply_id = o->reply ? o->reply : "";
            m->session = o->session;
            m->seq = ++p->seq_out;
            m->payload = (sn_wire_bytes){o->payload, o->len};
        } else if (o->kind == OUT_CODE_MISS) {
            sn_wire_frame_init(&f, SN_WIRE_CODE_MISS);
            memcpy(f.u.code_miss.hash, o->payload, 16);
        } else if (o->kind == OUT_LOCK) {
            sn_wire_frame_init(&f, (sn_wire_kind)o->mode);
            sn_wire_lock *k = &f.u.lock;
            k->lock = o->stage;
            k->addr = (sn_wire_addr){o->mode == SN_WIRE_LOCK_GRANT ? p->name : c->name,
                                     o->mode == SN_WIRE_LOCK_GRANT ? o->dst_inc : c->inc,
                                     o->actor, ""};
            k->handler = o->msg ? o->msg : "";
            k->ms = o->ms;
            k->payload = (sn_wire_bytes){o->payload, o->len};
        } else {
            sn_wire_frame_init(&f, SN_WIRE_REPLY);
            sn_wire_reply *r = &f.u.reply;
            r->dst = (sn_wire_addr){p->name, o->dst_inc, o->actor, ""};
            r->src = (sn_wire_addr){c->name, c->inc, o->from, o->stage};
            r->handler = o->reply;
            r->session = o->session;
            r->status = (sn_wire_status)o->status;
            r->error = o->text ? o->text : "";
            r->seq = ++p->seq_out;
            r->payload = (sn_wire_bytes){o->payload, o->len};
        }
        rc = send_peer(c, p, &f);
        if (rc == SN_EFULL && (o->kind == OUT_MESSAGE || o->kind == OUT_REPLY)) {
            p->seq_out--; /* not sent: its number goes to the retry */
            pthread_mutex_unlock(&c->mu);
            return SN_EFULL;
        }
    }
    if (p && o->kind == OUT_MESSAGE && p->queued)
        p->queued--;
    pthread_mutex_unlock(&c->mu);
    if (rc != SN_OK && o->kind == OUT_MESSAGE && o->session) {
        /* it never left: the requester hears of it now */
        pthread_mutex_lock(&c->mu);
        pending *q = NULL;
        for (pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
            if ((*pp)->session == o->session) {
                q = *pp;
                *pp = q->next;
                break;
            }
        }
        pthread_mutex_unlock(&c->mu);
        if (q) {
            deliver_error(c, q->actor, q->rid, o->node,
                          rc == SN_EFULL ? "mailbox full" : "node down");
            free(q);
        }
    }
    return rc;
}

/* Sends what other threads queued, in order per peer. A peer whose ZeroMQ queue is full
 * keeps its frames (and their order) for the next flush, which comes when its socket
 * drains; other peers are not held up behind it. */
void sn_cluster_flush(sn_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    outbound *o = c->out_head;
    c->out_head = c->out_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    outbound *keep = NULL, **keep_tail = &keep;
    char blocked[64][NAME_MAX_LEN];
    int nblocked = 0;
    while (o) {
        outbound *next = o->next;
        int held = 0;
        for (int i = 0; i < nblocked && !held; i++)
            held = strcmp(blocked[i], o->node) == 0;
        if (!held && send_out(c, o) == SN_EFULL) {
            held = 1;
            if (nblocked < 64)
                snprintf(blocked[nblocked++], NAME_MAX_LEN, "%s", o->node);
        }
        if (held) {
            o->next = NULL;
            *keep_tail = o;
            keep_tail = &o->next;
        } else {
            free_out(o);
        }
        o = next;
    }
    if (keep) { /* back in front of what was queued meanwhile */
        pthread_mutex_lock(&c->mu);
        *keep_tail = c->out_head;
        c->out_head = keep;
        if (!c->out_tail)
            c->out_tail = (outbound *)((char *)keep_tail - offsetof(outbound, next));
        pthread_mutex_unlock(&c->mu);
    }
}

void sn_cluster_registry_changed(sn_cluster *c)
{
    atomic_store(&c->registry_dirty, 1);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

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

sn_cluster *sn_cluster_new(struct sn_node *node, const sn_opts *o, struct ev_loop *loop,
                           const char *name, sn_log *log, int *err)
{
    sn_cluster *c = calloc(1, sizeof *c);
    if (!c) {
        *err = SN_ENOMEM;
        return NULL;
    }
    c->node = node;
    c->o = o;
    c->log = log;
    c->loop = loop;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->cluster, sizeof c->cluster, "%s", o->cluster ? o->cluster : "stage");
    snprintf(c->http, sizeof c->http, "%s", o->http ? o->http : "");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->inc = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u; /* new per start */
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->next_session, 1);
    atomic_init(&c->registry_dirty, 1);
    sn_wire_limits_init(&c->lim);
    c->lim.max_frame = (size_t)o->frame_max;
    c->lim.max_payload = (size_t)o->frame_max;
    c->scratch = luaL_newstate();
    c->zctx = zmq_ctx_new();
    if (!c->scratch || !c->zctx) {
        *err = SN_ENOMEM;
        sn_cluster_destroy(&c);
        return NULL;
    }
    if (o->curve_secret) { /* before any socket: the ZAP handler must be there first */
        char why[1024];
        int rc = sn_curve_keys_load(o->curve_secret, &c->keys, why, sizeof why);
        if (rc == SN_OK)
            rc = o->curve_allow ? sn_curve_allow_load(o->curve_allow, &c->allow, why, sizeof why)
                                : sn_curve_allow_of_keys(c->keys, &c->allow);
        if (rc == SN_OK && !(c->zap = sn_zap_new(c->zctx, c->allow, log, &rc)))
            snprintf(why, sizeof why, "cannot start the ZAP handler: %s", sn_strerror(rc));
        if (rc != SN_OK) {
            sn_log_write(log, SN_LOG_ERROR, "cluster", "%s", why);
            *err = SN_EINVAL;
            sn_cluster_destroy(&c);
            return NULL;
        }
        sn_log_write(log, SN_LOG_INFO, "cluster", "CurveZMQ on: %zu allowed keys",
                     sn_curve_allow_count(c->allow));
    }
    if (o->listen) {
        if (o->advertise)
            snprintf(c->endpoint, sizeof c->endpoint, "%s", o->advertise);
        else
            advertised(o->listen, c->endpoint, sizeof c->endpoint);
        c->router = zmq_socket(c->zctx, ZMQ_ROUTER);
        int one = 1, linger = 1000;
        int64_t maxmsg = o->frame_max;
        zmq_setsockopt(c->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
        zmq_setsockopt(c->router, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(c->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        int handshake = o->handshake_ms;
        zmq_setsockopt(c->router, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake);
        if (c->keys && sn_curve_server(c->router, c->keys) != SN_OK) {
            sn_log_write(log, SN_LOG_ERROR, "cluster", "this libzmq cannot enforce the ZAP "
                         "domain: refusing to run CurveZMQ that could fail open");
            *err = SN_ENOTSUP;
            sn_cluster_destroy(&c);
            return NULL;
        }
        if (zmq_bind(c->router, o->listen) != 0) {
            sn_log_write(log, SN_LOG_ERROR, "cluster", "cannot listen on %s: %s", o->listen,
                         zmq_strerror(zmq_errno()));
            *err = SN_EIO;
            sn_cluster_destroy(&c);
            return NULL;
        }
        watch_socket(c, c->router, &c->router_io, NULL);
    }
    for (int i = 0; i < o->join.n; i++) {
        seed *s = calloc(1, sizeof *s);
        if (!s)
            continue;
        snprintf(s->endpoint, sizeof s->endpoint, "tcp://%s", o->join.item[i]);
        s->dealer = new_dealer(c, s->endpoint);
        s->backoff = 0.5;
        s->next = c->seeds;
        c->seeds = s;
        if (s->dealer)
            watch_socket(c, s->dealer, &s->io, NULL);
        else
            s->done = 1;
    }
    ev_idle_init(&c->more, on_more);
    ev_prepare_init(&c->prepare, on_prepare);
    c->prepare.data = c;
    ev_prepare_start(loop, &c->prepare);
    ev_unref(loop); /* the prepare watcher alone keeps nothing alive */
    double hb = o->heartbeat_ms / 1000.0;
    ev_timer_init(&c->tick, on_tick, hb / 4, hb);
    c->tick.data = c;
    ev_timer_start(loop, &c->tick);
    sn_log_write(log, SN_LOG_INFO, "cluster", "node %s of cluster '%s'%s%s, incarnation %llu",
                 c->name, c->cluster, o->listen ? " listening on " : "",
                 o->listen ? o->listen : "", (unsigned long long)c->inc);
    *err = SN_OK;
    return c;
}

void sn_cluster_leave(sn_cluster *c)
{
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_LEAVE);
    f.u.leave.node = c->name;
    f.u.leave.incarnation = c->inc;
    pthread_mutex_lock(&c->mu);
    for (peer *p = c->peers; p; p = p->next) {
        if (p->state != P_DOWN && p->state != P_LEFT)
            send_peer(c, p, &f);
    }
    pthread_mutex_unlock(&c->mu);
    sn_log_write(c->log, SN_LOG_INFO, "cluster", "node %s leaves the cluster", c->name);
}

void sn_cluster_destroy(sn_cluster **cp)
{
    if (!cp || !*cp)
        return;
    sn_cluster *c = *cp;
    if (c->loop) {
        ev_timer_stop(c->loop, &c->tick);
        ev_idle_stop(c->loop, &c->more);
        if (ev_is_active(&c->prepare)) {
            ev_ref(c->loop);
            ev_prepare_stop(c->loop, &c->prepare);
        }
        if (c->router)
            ev_io_stop(c->loop, &c->router_io);
    }
    while (c->peers) {
        peer *p = c->peers;
        c->peers = p->next;
        if (p->io_started)
            ev_io_stop(c->loop, &p->io);
        if (p->ctl) {
            ev_io_stop(c->loop, &p->ctl_io);
            zmq_close(p->ctl); /* linger: up to 1 s for a LEAVE to go out */
        }
        if (p->dealer)
            zmq_close(p->dealer);
        free(p->stages);
        free(p->status_json);
        free(p->known);
        free(p->known_used);
        free(p);
    }
    while (c->seeds) {
        seed *s = c->seeds;
        c->seeds = s->next;
        if (s->dealer) {
            ev_io_stop(c->loop, &s->io);
            int linger = 0;
            zmq_setsockopt(s->dealer, ZMQ_LINGER, &linger, sizeof linger);
            zmq_close(s->dealer);
        }
        free(s);
    }
    while (c->pending) {
        pending *q = c->pending;
        c->pending = q->next;
        free(q);
    }
    while (c->out_head) {
        outbound *o = c->out_head;
        c->out_head = o->next;
        free_out(o);
    }
    if (c->router)
        zmq_close(c->router);
    sn_zap_destroy(&c->zap); /* after the sockets, before the context */
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    sn_curve_allow_destroy(&c->allow);
    sn_curve_keys_destroy(&c->keys);
    if (c->scratch)
        lua_close(c->scratch);
    pthread_mutex_destroy(&c->mu);
    free(c);
    *cp = NULL;
}

/* ---- views ------------------------------------------------------------------------------ */

uint64_t sn_cluster_incarnation(const sn_cluster *c)
{
    return c->inc;
}

const char *sn_cluster_cluster(const sn_cluster *c)
{
    return c->cluster;
}

const char *sn_cluster_endpoint(const sn_cluster *c)
{
    return c->endpoint;
}

size_t sn_cluster_members(sn_cluster *c, sn_status_member **members, sn_status_peer **peers)
{
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    for (peer *p = c->peers; p; p = p->next)
        n++;
    sn_status_member *m = calloc(n ? n : 1, sizeof *m);
    sn_status_peer *s = calloc(n ? n : 1, sizeof *s);
    double now = now_s();
    size_t i = 0;
    for (peer *p = c->peers; m && s && p; p = p->next, i++) {
        m[i] = (sn_status_member){.name = strdup(p->name),
                                  .endpoint = strdup(p->endpoint),
                                  .http = p->http[0] ? strdup(p->http) : NULL,
                                  .state = state_names[p->state],
                                  .incarnation = p->inc,
                                  .last_seen_s = now - p->last_heard};
        s[i].name = m[i].name;
        if (p->status_json && (p->state == P_ALIVE || p->state == P_SUSPECT)) {
            char *j = malloc(p->status_len + 1);
            if (j) {
                memcpy(j, p->status_json, p->status_len + 1);
                s[i].json = j;
                s[i].len = p->status_len;
            }
            s[i].age_s = now - p->status_at;
        } else if (p->state == P_DOWN || p->state == P_LEFT) {
            s[i].error = p->state == P_DOWN ? "node is down" : "node left";
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (!m || !s) {
        free(m);
        free(s);
        *members = NULL;
        *peers = NULL;
        return 0;
    }
    *members = m;
    *peers = s;
    return n;
}

void sn_cluster_members_free(sn_status_member *members, sn_status_peer *peers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)members[i].name);
        free((char *)members[i].endpoint);
        free((char *)members[i].http);
        free((char *)peers[i].json);
    }
    free(members);
    free(peers);
}

void sn_cluster_peer_counts(sn_cluster *c, size_t counts[4])
{
    memset(counts, 0, 4 * sizeof *counts);
    pthread_mutex_lock(&c->mu);
    for (peer *p = c->peers; p; p = p->next)
        counts[p->state]++;
    pthread_mutex_unlock(&c->mu);
}

void sn_cluster_stats_get(sn_cluster *c, sn_cluster_stats *s)
{
    s->bytes_in = atomic_load(&c->bytes_in);
    s->bytes_out = atomic_load(&c->bytes_out);
    s->frames_in = atomic_load(&c->frames_in);
    s->frames_out = atomic_load(&c->frames_out);
    s->seq_gaps = atomic_load(&c->seq_gaps);
    s->seq_dups = atomic_load(&c->seq_dups);
    s->refused = atomic_load(&c->refused);
}

/* ---- the function cache's sender side --------------------------------------------------- */

static size_t known_slot(const unsigned char hash[16])
{
    size_t k;
    memcpy(&k, hash + 8, sizeof k);
    return k % KNOWN_SLOTS;
}

int sn_cluster_knows(sn_cluster *c, const char *node, const unsigned char hash[16])
{
    pthread_mutex_lock(&c->mu);
    peer *p = find_peer(c, node);
    size_t k = known_slot(hash);
    int yes = p && p->known_used && p->known_used[k] && memcmp(p->known[k], hash, 16) == 0;
    pthread_mutex_unlock(&c->mu);
    return yes;
}

void sn_cluster_sent_code(sn_cluster *c, const char *node, const unsigned char hash[16])
{
    pthread_mutex_lock(&c->mu);
    peer *p = find_peer(c, node);
    if (p && !p->known) {
        p->known = calloc(KNOWN_SLOTS, sizeof *p->known);
        p->known_used = calloc(KNOWN_SLOTS, 1);
        if (!p->known || !p->known_used) {
            free(p->known);
            free(p->known_used);
            p->known = NULL;
            p->known_used = NULL;
        }
    }
    if (p && p->known) { /* a collision forgets the older hash: it is sent in full again */
        size_t k = known_slot(hash);
        memcpy(p->known[k], hash, 16);
        p->known_used[k] = 1;
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- cluster-wide locks ----------------------------------------------------------------- */

static uint64_t rendezvous(const char *lock, const char *node)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = lock; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = node; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

int sn_cluster_lock_home(sn_cluster *c, const char *lock, char *home, size_t cap)
{
    uint64_t best = rendezvous(lock, c->name);
    const char *who = NULL;
    pthread_mutex_lock(&c->mu);
    for (peer *p = c->peers; p; p = p->next) {
        if (p->state != P_ALIVE)
            continue;
        uint64_t score = rendezvous(lock, p->name);
        if (score > best || (score == best && strcmp(p->name, who ? who : c->name) < 0)) {
            best = score;
            who = p->name;
        }
    }
    if (who)
        snprintf(home, cap, "%s", who);
    pthread_mutex_unlock(&c->mu);
    return who != NULL;
}

static int queue_lock(sn_cluster *c, const char *node, int kind, const char *lock, uint64_t actor,
                      uint64_t dst_inc, const char *handler, const void *data, size_t len,
                      double ms)
{
    outbound *o = calloc(1, sizeof *o);
    if (!o)
        return SN_ENOMEM;
    o->kind = OUT_LOCK;
    snprintf(o->node, sizeof o->node, "%s", node);
    o->mode = kind;
    o->actor = actor;
    o->dst_inc = dst_inc;
    o->ms = ms > 0 ? (uint32_t)ms : 0;
    o->stage = strdup(lock);
    o->msg = dup_or_null(handler);
    o->payload = malloc(len ? len : 1);
    o->len = len;
    if (!o->stage || (handler && !o->msg) || !o->payload) {
        free_out(o);
        return SN_ENOMEM;
    }
    if (len)
        memcpy(o->payload, data, len);
    enqueue(c, o);
    return SN_OK;
}

int sn_cluster_lock_send(sn_cluster *c, const char *home, int op, const char *lock,
                         uint64_t actor, const char *handler, const void *data, size_t len,
                         double ms)
{
    int kind = op == 0 ? SN_WIRE_LOCK_ACQUIRE : op == 1 ? SN_WIRE_LOCK_EXTEND
                                                        : SN_WIRE_LOCK_RELEASE;
    return queue_lock(c, home, kind, lock, actor, 0, handler, data, len, ms);
}

void sn_cluster_lock_grant(sn_cluster *c, const char *node, uint64_t actor, const char *handler,
                           const void *data, size_t len)
{
    uint64_t inc = 0;
    pthread_mutex_lock(&c->mu);
    peer *p = find_peer(c, node);
    if (p)
        inc = p->inc;
    pthread_mutex_unlock(&c->mu);
    queue_lock(c, node, SN_WIRE_LOCK_GRANT, "", actor, inc, handler, data, len, 0);
}

void sn_cluster_code_miss(sn_cluster *c, const char *node, const unsigned char hash[16])
{
    outbound *o = calloc(1, sizeof *o);
    if (!o || !(o->payload = malloc(16))) {
        free(o);
        return;
    }
    o->kind = OUT_CODE_MISS;
    snprintf(o->node, sizeof o->node, "%s", node);
    memcpy(o->payload, hash, 16);
    o->len = 16;
    enqueue(c, o);
}
