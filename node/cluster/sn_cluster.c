/* sn_cluster: the facade that wires the cluster's parts. One listening socket receives every
 * frame addressed to this node; per peer, one connection carries data (MESSAGE, REPLY, LOCK)
 * and one control (heartbeats, gossip, registry, status), so a large message on a slow link
 * never holds a heartbeat back; each is made at its first frame, and a control one closed
 * when idle (sn_peers), so a node holds connections to whom it talks, not to the whole
 * cluster. The handshake's answer, and a probe's, go back on the listening socket.
 *
 * Failure detection: up to `probe` other members, every node heartbeats every member and
 * marks one suspect after `suspect` ms of silence, down after `down` ms more. Past that,
 * each period it probes `probe` members in turn (plus the suspects), every probe is
 * answered, and a member is suspected by whoever probes it unanswered; suspicion spreads by
 * gossip and the member refutes it (SWIM). A member down for `forget` ms is forgotten.
 * Gossip also carries discovery (member lists with incarnations); docs/cluster.md.
 *
 * Locks: the loop thread is the only writer of members, sessions are taken whole, and no
 * lock that another thread takes is held while a frame is encoded or sent. */
#include "sn_cluster.h"
#include "sn_clock.h"
#include "sn_codecache.h"
#include "sn_curve.h"
#include "sn_dlock.h"
#include "sn_error.h"
#include "sn_flush.h"
#include "sn_gate.h"
#include "sn_link.h"
#include "sn_members.h"
#include "sn_outbox.h"
#include "sn_peers.h"
#include "sn_registry.h"
#include "sn_sessions.h"
#include "sn_peerviews.h"
#include "sn_transport_zmq.h"
#include "sn_wire_batch.h"

#include <ev.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { STATUS_EVERY = 2 /* ticks */, REGISTRY_EVERY = 5 /* ticks */ };

typedef struct seed {
    struct seed *next;
    char endpoint[256];
    char name[SN_ROUTER_NODE_MAX]; /* the node expected there (NAME@, or the host's label) */
    sn_conn *conn;
    double next_try, backoff;
    int done; /* welcomed, or refused for good */
} seed;

struct sn_cluster {
    sn_cluster_hooks h;
    const sn_opts *o;
    sn_log *log;
    struct ev_loop *loop;
    char name[SN_ROUTER_NODE_MAX];
    char cluster[128];
    char endpoint[256];
    char http[128];
    uint64_t inc;
    uint64_t version; /* of this node's own member record: raised to refute a suspicion */
    sn_link *link; /* the transport, the encode buffer, the wire limits, the counters */
    sn_members *ms;
    sn_sessions *ss;
    sn_outbox *ob;
    sn_flush *fl; /* the outbox onto the wire, batched per peer */
    sn_dlock *dl;
    sn_codecache *cc;
    sn_gate *guard; /* claimed source against authenticated source; refusals */
    seed *seeds;
    ev_prepare prepare;
    ev_timer tick;
    unsigned ticks;
    atomic_int registry_dirty;
    int registry_owed; /* some member is owed the registry (m->registry_owed): loop thread */
    uint64_t registry_version;
    int registry_too_big; /* logged once until it fits again */
    double idle, trimmed_at; /* --set link_idle in s, at least two periods (0: never) */
    _Atomic uint64_t seq_gaps, seq_dups, refused;
};

static double now_of(sn_cluster *c)
{
    return c->h.now ? c->h.now(c->h.ud) : sn_clock_mono();
}

/* ---- sending (loop thread; no lock held) ------------------------------------------------ */

/* Both connections to a member (control frames; MESSAGE, REPLY and LOCK frames) are made by
 * the first frame that needs one; a control one closes after `link_idle` ms unused (sn_peers). */
static int send_member(sn_cluster *c, sn_member *m, const sn_wire_frame *f)
{
    return sn_peers_send(c->link, m, f);
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
    f->u.hello.flags = SN_WIRE_HELLO_BATCH;
}

static sn_wire_member *member_list(sn_cluster *c, uint32_t *n)
{
    sn_wire_member self = {.name = c->name, .endpoint = c->endpoint, .http = c->http,
                           .incarnation = c->inc, .state = SN_WIRE_ALIVE,
                           .version = c->version};
    return sn_members_wire_list(c->ms, &self, n);
}

static void deliver_error(sn_cluster *c, uint64_t actor, const char *rid, const char *from,
                          const char *why)
{
    sn_cluster_post_error(&c->h, actor, rid, from, why);
}

/* Answers every session in list with (nil, why), except a broadcast that got an answer or
 * merely timed out; frees the list. */
static void fail_sessions(sn_cluster *c, sn_session *list, int timeout, const char *why)
{
    for (sn_session *q = list; q; q = q->next) {
        if (!(q->many && (q->answered || timeout)))
            deliver_error(c, q->actor, q->rid, q->node, why);
    }
    sn_sessions_free_list(list);
}

/* ---- members ---------------------------------------------------------------------------- */

/* A member is gone (down, left, forgotten or restarted): what it ran and what waits on it. */
static void member_gone(sn_cluster *c, const char *name, uint64_t keep_inc)
{
    c->h.drop_node(c->h.ud, name);
    fail_sessions(c, sn_sessions_take_node(c->ss, name, keep_inc, keep_inc != 0), 0,
                  sn_strerror(SN_EDOWN));
    sn_dlock_home_gone(c->dl, name, sn_strerror(SN_EDOWN));
}

/* Learns a member (HELLO, WELCOME: from itself; gossip: hearsay). NULL when refused. */
static sn_member *learn(sn_cluster *c, const char *name, const char *endpoint, const char *http,
                        uint64_t inc, double now, int hearsay)
{
    sn_member_change change;
    uint64_t old_inc;
    if (!sn_gate_admit_member(c->guard, c->ms, sn_link_transport(c->link), name,
                               c->o->members > 0 ? (size_t)c->o->members : 1024, hearsay))
        return NULL;
    sn_member *m = sn_members_add(c->ms, name, endpoint, http, inc, now, &change, &old_inc);
    if (!m)
        return NULL;
    if (change == SN_MEMBER_RESTARTED) {
        /* New connections: the old ones may sit in a long reconnect backoff towards the dead
         * process (the new one would then not hear us for seconds), and hold frames meant for
         * it. Closing is deferred by the transport if a drain is reading them. */
        sn_peers_close(c->link, m);
        sn_codecache_forget(c->cc, name); /* a new process holds no bytecode */
        member_gone(c, name, inc);        /* requests to the old process end now */
    }
    if (change != SN_MEMBER_SAME) { /* it needs our registry; the others have it */
        m->registry_owed = 1;
        c->registry_owed = 1;
    }
    return m;
}

static void alive(sn_cluster *c, sn_member *m, double now)
{
    sn_members_heard(c->ms, m, now);
    if (m->state != SN_MEMBER_ALIVE)
        sn_members_set_state(c->ms, m, SN_MEMBER_ALIVE, now);
}

static void on_member_change(sn_member *m, sn_member_state from, int forgotten, void *ud)
{
    sn_cluster *c = ud;
    if (forgotten) {
        sn_peers_close(c->link, m);
        sn_codecache_forget(c->cc, m->name);
    }
    int gone = m->state == SN_MEMBER_DOWN || m->state == SN_MEMBER_LEFT;
    if (gone && from != SN_MEMBER_DOWN && from != SN_MEMBER_LEFT)
        member_gone(c, m->name, 0);
}

/* ---- receiving -------------------------------------------------------------------------- */

static void refuse(sn_cluster *c, const void *id, size_t idlen, uint32_t code, const char *text)
{
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_ERROR);
    f.u.error.code = code;
    f.u.error.text = text;
    sn_link_answer(c->link, id, idlen, &f);
}

static void handle_hello(sn_cluster *c, const sn_wire_hello *h, const void *id, size_t idlen,
                         double now)
{
    if (strcmp(h->cluster, c->cluster) != 0) {
        sn_gate_refused(c->guard, SN_GATE_HELLO, "refused %s (%s): cluster name mismatch: "
                         "this node is in '%s', it is in '%s'", h->node, h->endpoint,
                         c->cluster, h->cluster);
        atomic_fetch_add(&c->refused, 1);
        char text[512];
        snprintf(text, sizeof text, "cluster name mismatch: node %s is in cluster '%s', not '%s'",
                 c->name, c->cluster, h->cluster);
        refuse(c, id, idlen, SN_WIRE_E_CLUSTER, text);
        return;
    }
    if (strcmp(h->node, c->name) == 0) {
        sn_gate_refused(c->guard, SN_GATE_HELLO, "refused a node at %s that uses this "
                         "node's own name '%s'", h->endpoint, c->name);
        refuse(c, id, idlen, SN_WIRE_E_NAME, "node name already in use");
        return;
    }
    if (sn_members_forgotten(c->ms, h->node, h->incarnation)) {
        sn_gate_refused(c->guard, SN_GATE_HELLO, "refused %s: incarnation %llu was "
                         "forgotten (down longer than --set forget); restart it to rejoin",
                         h->node, (unsigned long long)h->incarnation);
        atomic_fetch_add(&c->refused, 1);
        refuse(c, id, idlen, SN_WIRE_E_STALE, "this incarnation was forgotten: restart to rejoin");
        return;
    }
    sn_member *m = learn(c, h->node, h->endpoint, h->http, h->incarnation, now, 0);
    if (m) {
        m->batch = (h->flags & SN_WIRE_HELLO_BATCH) != 0;
        alive(c, m, now);
    }
    uint32_t n;
    sn_wire_member *list = member_list(c, &n);
    sn_wire_frame f;
    fill_hello(c, &f, SN_WIRE_WELCOME);
    f.u.hello.members = list;
    f.u.hello.nmembers = n;
    sn_link_answer(c->link, id, idlen, &f);
    free(list);
}

/* Greets every member we do not know yet (they learn about us the same way). */
static void learn_members(sn_cluster *c, const sn_wire_member *v, uint32_t n, double now)
{
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, c->name) == 0) { /* said of us: refute a suspicion (SWIM) */
            if (v[i].incarnation == c->inc && v[i].state != SN_WIRE_ALIVE &&
                v[i].version >= c->version) {
                c->version = v[i].version + 1;
                sn_log_write(c->log, SN_LOG_INFO, "cluster", "refuting: a peer believes this "
                             "node %s (now version %llu)", v[i].state == SN_WIRE_SUSPECT ?
                             "suspect" : "down", (unsigned long long)c->version);
            }
            continue;
        }
        sn_member *m = sn_members_find(c->ms, v[i].name);
        sn_member_state from;
        if (m && m->inc == v[i].incarnation && v[i].state != SN_WIRE_LEFT &&
            sn_members_hearsay(c->ms, m, (sn_member_state)v[i].state, v[i].version, now, &from)) {
            on_member_change(m, from, 0, c);
            continue;
        }
        if (v[i].state == SN_WIRE_LEFT && m && m->inc == v[i].incarnation) {
            from = m->state;
            if (sn_members_set_state(c->ms, m, SN_MEMBER_LEFT, now))
                on_member_change(m, from, 0, c);
            continue;
        }
        /* Hearsay moves a known member's state only, never its endpoint or incarnation: only
         * the member itself (HELLO on a connection authenticated as it) can. */
        if (v[i].state != SN_WIRE_ALIVE || m)
            continue;
        m = learn(c, v[i].name, v[i].endpoint, v[i].http, v[i].incarnation, now, 1);
        if (m) {
            sn_wire_frame f;
            fill_hello(c, &f, SN_WIRE_HELLO);
            send_member(c, m, &f);
        }
    }
}

/* The per-pair sequence check of MESSAGE and REPLY frames. */
static int accept_seq(sn_cluster *c, const char *node, uint64_t inc, uint64_t seq, double now)
{
    sn_member *m = sn_members_find(c->ms, node);
    if (!m || !seq)
        return 1;
    sn_members_heard(c->ms, m, now);
    uint64_t gap;
    if (!sn_outbox_accept_seq(m, inc, seq, &gap)) {
        atomic_fetch_add(&c->seq_dups, 1);
        sn_gate_refused(c->guard, SN_GATE_DUPLICATE, "dropped a duplicate from %s: sequence "
                         "%llu, already at %llu", node, (unsigned long long)seq,
                         (unsigned long long)m->seq_in);
        return 0;
    }
    if (gap)
        atomic_fetch_add(&c->seq_gaps, gap);
    return 1;
}

static void queue_out(sn_cluster *c, sn_out *o)
{
    if (sn_outbox_push(c->ob, o))
        c->h.wake(c->h.ud);
}

/* A worker's call or reply: straight onto the wire when the loop thread is idle (someone
 * waits on it). A one-way message goes through the outbox, to travel batched. */
static void send_or_queue(sn_cluster *c, sn_out *o)
{
    if (!o->session || !sn_flush_direct(c->fl, c->ob, o, c->h.wake, c->h.ud))
        queue_out(c, o);
}

static void handle_message(sn_cluster *c, const sn_wire_message *msg, int trusted, double now)
{
    if (!accept_seq(c, msg->src.node, msg->src.incarnation, msg->seq, now))
        return; /* never deliver twice */
    int status = SN_WIRE_OK;
    if (msg->dst.incarnation && msg->dst.incarnation != c->inc)
        status = SN_WIRE_NODE_DOWN; /* addressed to a process that is gone */
    else
        status = c->h.deliver(c->h.ud, msg, trusted);
    if (status != SN_WIRE_OK && msg->session) {
        char why[300];
        int code = status == SN_WIRE_NO_ROUTE       ? SN_ENOROUTE
                   : status == SN_WIRE_MAILBOX_FULL ? SN_EFULL
                                                    : SN_EDOWN;
        sn_error_text(code, code == SN_ENOROUTE ? msg->dst.stage : NULL, why, sizeof why);
        sn_msg m = {.src = msg->src.actor, .reply = msg->reply_id, .src_node = msg->src.node,
                    .src_inc = msg->src.incarnation, .session = msg->session};
        sn_cluster_reply(c, &m, 0, msg->dst.stage, status, why, NULL, 0);
    }
}

static void handle_reply(sn_cluster *c, const sn_wire_reply *r, int trusted, double now)
{
    if (r->dst.incarnation && r->dst.incarnation != c->inc)
        return;
    if (!accept_seq(c, r->src.node, r->src.incarnation, r->seq, now))
        return;
    sn_session q;
    if (!sn_sessions_answer(c->ss, r->session, &q))
        return; /* timed out already, or not ours: at most once */
    if (r->status != SN_WIRE_OK) {
        deliver_error(c, q.actor, q.rid, r->src.node, r->error[0] ? r->error : "failed");
        return;
    }
    sn_msg *m = sn_msg_new_from(SN_MSG_SIGNAL, q.rid, NULL, r->src.stage, r->src.node,
                                r->src.incarnation, 0, r->payload.data, r->payload.len);
    if (m) {
        m->src = r->src.actor;
        if (!trusted)
            m->flags |= SN_MSG_F_UNTRUSTED;
        if (c->h.post(c->h.ud, q.actor, m, 1) != SN_OK)
            sn_msg_destroy(&m);
    }
}

/* Gossip and the answer to a probe go back the way the heartbeat came (on the listening socket
 * to id: the prober's own connection, no new one of ours) when it came there. */
static void handle_heartbeat(sn_cluster *c, const sn_wire_heartbeat *hb, const void *id,
                             size_t idlen, double now)
{
    sn_member *m = sn_members_find(c->ms, hb->node);
    sn_wire_frame f;
    if (m && m->inc < hb->incarnation) { /* restarted: its WELCOME to our greeting brings the */
        fill_hello(c, &f, SN_WIRE_HELLO); /* new incarnation (gossip never moves it) */
        send_member(c, m, &f);
    }
    if (!m || m->inc != hb->incarnation || m->state == SN_MEMBER_LEFT)
        return; /* unknown, or restarted */
    /* our views differ: gossip, before this heartbeat changes ours, so that a member we
     * suspect hears of it and refutes it (else others would go on suspecting it) */
    if (hb->digest != sn_members_digest(c->ms, c->inc, c->version)) {
        uint32_t n;
        sn_wire_member *list = member_list(c, &n);
        sn_wire_frame g;
        sn_wire_frame_init(&g, SN_WIRE_GOSSIP);
        g.u.gossip.node = c->name;
        g.u.gossip.incarnation = c->inc;
        g.u.gossip.members = list;
        g.u.gossip.nmembers = n;
        sn_peers_reply(c->link, m, id, idlen, &g);
        free(list);
    }
    alive(c, m, now);
    if (hb->registry_version > m->registry_version && !sn_members_probing(c->ms))
        atomic_store(&c->registry_dirty, 1);
    if (hb->counter && sn_members_probes(c->ms, (size_t)c->o->probe)) {
        /* probed (an answer carries counter 0 and is not answered): answer every probe, even
         * right after our own heartbeat to it (which may have reached it before it probed,
         * and left its probe unanswered until our next probe of it, past `suspect`), and
         * even before our first period with this many members (a node that just joined) */
        sn_wire_frame ack;
        sn_wire_frame_init(&ack, SN_WIRE_HEARTBEAT);
        ack.u.heartbeat.node = c->name;
        ack.u.heartbeat.incarnation = c->inc;
        ack.u.heartbeat.digest = sn_members_digest(c->ms, c->inc, c->version);
        ack.u.heartbeat.registry_version = c->registry_version;
        sn_peers_reply(c->link, m, id, idlen, &ack);
    }
}

/* One frame, alone or out of a BATCH (in_batch): the same checks either way. */
static void handle_one(sn_cluster *c, const void *data, size_t len, const void *id,
                       size_t idlen, const char *peer, int in_batch, double now)
{
    int trusted = sn_curve_trust_bytecode(peer) == SN_OK; /* code only from the authenticated */
    sn_wire_frame f;
    char err[300];
    _Alignas(16) char scratch[4096]; /* its strings, no allocation: a bigger frame takes one */
    if (sn_wire_decode_in(data, len, sn_link_limits(c->link), &f, scratch, sizeof scratch, err,
                          sizeof err) != SN_OK) {
        int version;
        sn_wire_kind kind;
        int peek = sn_wire_peek(data, len, &version, &kind);
        sn_gate_refused(c->guard, SN_GATE_MALFORMED, "dropped a frame from %s: %s",
                         peer ? peer : "an unauthenticated peer", err);
        if (id && peek == SN_ENOTSUP && version != SN_WIRE_VERSION) { /* tell it, too */
            char text[300];
            snprintf(text, sizeof text, "protocol version mismatch: node %s speaks version %d, "
                     "not %d", c->name, SN_WIRE_VERSION, version);
            refuse(c, id, idlen, SN_WIRE_E_VERSION, text);
        }
        atomic_fetch_add(&c->refused, 1);
        return;
    }
    if ((in_batch && !sn_gate_batched(c->guard, &f, peer)) || /* not a data frame */
        !sn_gate_check(c->guard, &f, peer)) { /* claims to be another node: refused */
        atomic_fetch_add(&c->refused, 1);
        sn_wire_frame_fini(&f);
        return;
    }
    switch (f.kind) {
    case SN_WIRE_HELLO:
        if (id)
            handle_hello(c, &f.u.hello, id, idlen, now);
        break;
    case SN_WIRE_WELCOME: {
        if (strcmp(f.u.hello.cluster, c->cluster) != 0)
            break;
        for (seed *s = c->seeds; s; s = s->next) {
            if (!s->done && strcmp(s->endpoint, f.u.hello.endpoint) == 0)
                s->done = 1;
        }
        sn_member *m = learn(c, f.u.hello.node, f.u.hello.endpoint, f.u.hello.http,
                             f.u.hello.incarnation, now, 0);
        if (m) {
            m->batch = (f.u.hello.flags & SN_WIRE_HELLO_BATCH) != 0;
            alive(c, m, now);
        }
        learn_members(c, f.u.hello.members, f.u.hello.nmembers, now);
        break;
    }
    case SN_WIRE_ERROR:
        sn_gate_log(c->guard, "refused by a peer: %s", f.u.error.text);
        if (f.u.error.code == SN_WIRE_E_CLUSTER || f.u.error.code == SN_WIRE_E_VERSION ||
            f.u.error.code == SN_WIRE_E_NAME || f.u.error.code == SN_WIRE_E_STALE) {
            for (seed *s = c->seeds; s; s = s->next) /* stop greeting the seeds that refused */
                s->done = s->done || !id;
        }
        break;
    case SN_WIRE_HEARTBEAT: handle_heartbeat(c, &f.u.heartbeat, id, idlen, now); break;
    case SN_WIRE_GOSSIP: learn_members(c, f.u.gossip.members, f.u.gossip.nmembers, now); break;
    case SN_WIRE_REGISTRY: {
        sn_registry_apply(&c->h, c->ms, &f.u.registry);
        sn_member *m = sn_members_find(c->ms, f.u.registry.node);
        if (m && m->nstages && !m->data && !sn_members_probing(c->ms)) /* routable: messages */
            sn_peers_conn(c->link, m, 1); /* may go there soon; not to every member of many */
        break;
    }
    case SN_WIRE_MESSAGE: handle_message(c, &f.u.message, trusted, now); break;
    case SN_WIRE_REPLY: handle_reply(c, &f.u.reply, trusted, now); break;
    case SN_WIRE_LEAVE: {
        sn_member *m = sn_members_find(c->ms, f.u.leave.node);
        if (m && m->inc == f.u.leave.incarnation) {
            sn_member_state from = m->state;
            if (sn_members_set_state(c->ms, m, SN_MEMBER_LEFT, now))
                on_member_change(m, from, 0, c);
        }
        break;
    }
    case SN_WIRE_STATUS_REQ:
    case SN_WIRE_STATUS: sn_peerviews_frame(c->link, &c->h, c->ms, c->name, c->inc, &f, id, idlen, now); break;
    case SN_WIRE_LOCK_ACQUIRE:
    case SN_WIRE_LOCK_EXTEND:
    case SN_WIRE_LOCK_RELEASE:
    case SN_WIRE_LOCK_GRANT:
    case SN_WIRE_LOCK_DENY: sn_dlock_frame(c->dl, &f, peer, c->guard); break;
    case SN_WIRE_CODE_MISS: sn_codecache_lost(c->cc, f.u.code_miss.hash); break;
    default: break;
    }
    sn_wire_frame_fini(&f);
}

/* Every ZeroMQ message from a peer: a frame, or a BATCH of them, checked whole before its
 * first frame is handled, then each frame as if it came alone. */
static void handle_frame(void *ud, const void *data, size_t len, const void *id, size_t idlen,
                         const char *peer)
{
    sn_cluster *c = ud;
    sn_link_received(c->link, len);
    double now = now_of(c); /* once a batch: its frames came at the same time */
    if (!sn_wire_batch_is(data, len)) {
        handle_one(c, data, len, id, idlen, peer, 0, now);
        return;
    }
    sn_wire_batch_reader r;
    char err[300];
    if (sn_wire_batch_open(data, len, sn_link_limits(c->link), &r, err, sizeof err) != SN_OK) {
        sn_gate_refused(c->guard, SN_GATE_MALFORMED, "dropped a frame from %s: %s",
                         peer ? peer : "an unauthenticated peer", err);
        atomic_fetch_add(&c->refused, 1);
        return;
    }
    const char *frame;
    size_t flen;
    while (sn_wire_batch_next(&r, &frame, &flen))
        handle_one(c, frame, flen, id, idlen, peer, 1, now);
}

static void poll_held(sn_cluster *c)
{
    sn_flush_run(c->fl, c->ob);
    sn_transport_drain(sn_link_transport(c->link), handle_frame, c);
}

void sn_cluster_poll(sn_cluster *c)
{
    sn_link_lock(c->link);
    poll_held(c);
    sn_link_unlock(c->link);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    sn_cluster_poll(w->data);
}

/* ---- the heartbeat tick ----------------------------------------------------------------- */

void sn_cluster_tick(sn_cluster *c)
{
    char why[64];
    sn_link_lock(c->link);
    double now = now_of(c);
    c->ticks++;
    sn_members_check(c->ms, now, c->o->suspect_ms / 1000.0, c->o->down_ms / 1000.0,
                     c->o->forget_ms / 1000.0, on_member_change, c);
    /* Small clusters: every member, every period. Larger ones (over --set probe members):
     * a few in turn, and the suspect ones, so a node's own cost does not grow with them. */
    sn_members_choose(c->ms, (size_t)c->o->probe);
    sn_wire_frame hb;
    sn_wire_frame_init(&hb, SN_WIRE_HEARTBEAT);
    hb.u.heartbeat.node = c->name;
    hb.u.heartbeat.incarnation = c->inc;
    hb.u.heartbeat.counter = c->ticks;
    hb.u.heartbeat.digest = sn_members_digest(c->ms, c->inc, c->version);
    hb.u.heartbeat.registry_version = c->registry_version;
    if (sn_link_encode(c->link, &hb) == SN_OK) { /* down members too: a healed partition finds itself */
        for (sn_member *m = sn_members_first(c->ms); m; m = m->next) {
            if (m->target) {
                sn_link_send_encoded(c->link, sn_peers_conn(c->link, m, 0));
                sn_members_probed(c->ms, m, now);
            }
        }
    }
    if (c->ticks % STATUS_EVERY == 0)
        sn_peerviews_ask(c->link, c->ms, c->name, c->inc, c->ticks);
    for (seed *s = c->seeds; s; s = s->next) { /* joining: greet, with backoff */
        if (s->done || now < s->next_try)
            continue;
        sn_wire_frame h;
        fill_hello(c, &h, SN_WIRE_HELLO);
        sn_link_send(c->link, s->conn, &h);
        s->next_try = now + s->backoff;
        if (s->backoff < c->o->join_retry_max_ms / 1000.0)
            s->backoff *= 2;
        sn_log_write(c->log, SN_LOG_DEBUG, "cluster", "greeting seed %s", s->endpoint);
    }
    int changed = atomic_exchange(&c->registry_dirty, 0), owed = c->registry_owed;
    c->registry_owed = 0;
    if (changed || owed || c->ticks % REGISTRY_EVERY == 0)
        sn_registry_announce(&c->h, c->link, c->ms, c->log, c->name, c->inc, changed,
                             &c->registry_version, &c->registry_too_big);
    fail_sessions(c, sn_sessions_take_due(c->ss, now), 1, sn_error_text(SN_ETIMEDOUT, NULL,
                  why, sizeof why));
    for (seed *s = c->seeds; s; s = s->next) {
        if (s->done) /* welcomed or refused: its connection is not used again */
            sn_transport_close(sn_link_transport(c->link), &s->conn);
    }
    sn_peers_idle(c->link, c->ms, now, c->idle, &c->trimmed_at);
    poll_held(c);
    sn_link_unlock(c->link);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sn_cluster_tick(w->data);
}

/* ---- outbound from other threads -------------------------------------------------------- */

int sn_cluster_send(sn_cluster *c, const char *node, int mode, const char *stage,
                    const char *msg, const char *reply_rid, uint64_t src_actor,
                    const char *src_stage, const void *payload, size_t len)
{
    sn_members_lock(c->ms);
    sn_member *m = sn_members_find(c->ms, node);
    int rc = !m || m->state == SN_MEMBER_DOWN || m->state == SN_MEMBER_LEFT ? SN_ENOENT
             : m->queued >= (size_t)c->o->peer_queue                          ? SN_EFULL
                                                                              : SN_OK;
    uint64_t inc = m ? m->inc : 0;
    if (rc == SN_OK)
        m->queued++;
    sn_members_unlock(c->ms);
    if (rc != SN_OK)
        return rc;
    sn_out *o = sn_out_new(SN_OUT_MESSAGE, node, stage, msg, reply_rid,
                           src_stage ? src_stage : "", NULL, payload, len);
    if (!o) {
        sn_members_lock(c->ms);
        if ((m = sn_members_find(c->ms, node)) && m->queued)
            m->queued--;
        sn_members_unlock(c->ms);
        return SN_ENOMEM;
    }
    o->mode = mode;
    o->actor = src_actor;
    o->dst_inc = inc;
    if (reply_rid) /* the reply, or its failure, comes back to rid */
        o->session = sn_sessions_add(c->ss, src_actor, reply_rid, node, inc,
                                     now_of(c) + c->o->reply_timeout_ms / 1000.0,
                                     mode == SN_WIRE_ALL);
    send_or_queue(c, o);
    return SN_OK;
}

void sn_cluster_reply(sn_cluster *c, const sn_msg *m, uint64_t from_actor, const char *stage,
                      int status, const char *text, const void *payload, size_t len)
{
    sn_out *o = sn_out_new(SN_OUT_REPLY, m->src_node, stage ? stage : "", NULL,
                           m->reply ? m->reply : "", NULL, text, payload, len);
    if (!o)
        return;
    o->actor = m->src; /* the requester, on that node */
    o->from = from_actor;
    o->dst_inc = m->src_inc;
    o->session = m->session;
    o->status = status;
    send_or_queue(c, o);
}

void sn_cluster_flush(sn_cluster *c)
{
    sn_link_lock(c->link);
    sn_flush_run(c->fl, c->ob);
    sn_link_unlock(c->link);
}

void sn_cluster_registry_changed(sn_cluster *c)
{
    atomic_store(&c->registry_dirty, 1);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

sn_cluster *sn_cluster_new(const sn_opts *o, struct ev_loop *loop, const char *name,
                           sn_log *log, const sn_cluster_hooks *hooks, int *err)
{
    sn_transport *t = sn_transport_zmq_new(o, loop, log, err);
    if (t && o->curve_secret && !sn_transport_admits(t, name)) { /* peers would refuse us */
        sn_log_write(log, SN_LOG_ERROR, "cluster", "this node's name '%s' has no key in "
                     "--curve-allow %s", name, o->curve_allow);
        sn_transport_destroy(&t);
        *err = SN_EINVAL;
    }
    if (!t)
        return NULL;
    char endpoint[256];
    sn_transport_zmq_endpoint(o, endpoint, sizeof endpoint);
    return sn_cluster_new_on(t, endpoint, o, loop, name, log, hooks, err);
}

sn_cluster *sn_cluster_new_on(sn_transport *t, const char *endpoint, const sn_opts *o,
                              struct ev_loop *loop, const char *name, sn_log *log,
                              const sn_cluster_hooks *hooks, int *err)
{
    sn_cluster *c = calloc(1, sizeof *c);
    if (!c) {
        sn_transport_destroy(&t);
        *err = SN_ENOMEM;
        return NULL;
    }
    c->h = *hooks;
    c->o = o;
    c->log = log;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->cluster, sizeof c->cluster, "%s", o->cluster ? o->cluster : "stage");
    snprintf(c->http, sizeof c->http, "%s", o->http ? o->http : "");
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint ? endpoint : "");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->inc = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u; /* new per start */
    atomic_init(&c->registry_dirty, 1);
    c->link = sn_link_new(t, (size_t)o->frame_max, log);
    c->ms = sn_members_new(c->name, log);
    c->ss = sn_sessions_new();
    c->ob = sn_outbox_new();
    c->cc = sn_codecache_new();
    c->guard = sn_gate_new(log);
    c->dl = c->ob && c->ms ? sn_dlock_new(&c->h, c->ob, c->ms, log, c->inc) : NULL;
    c->idle = o->link_idle_ms / 1000.0;
    if (c->idle > 0 && c->idle < 2 * o->heartbeat_ms / 1000.0) {
        c->idle = 2 * o->heartbeat_ms / 1000.0; /* else links probed every period would churn */
        sn_log_write(log, SN_LOG_WARN, "cluster", "--set link_idle=%d ms is under two "
                     "heartbeat periods: using %d ms", o->link_idle_ms, 2 * o->heartbeat_ms);
    }
    size_t batch_max = (size_t)(o->batch_max < o->frame_max ? o->batch_max : o->frame_max);
    c->fl = sn_flush_new(&c->h, c->link, c->ms, c->ss, log, c->name, c->inc, batch_max);
    if (!c->link || !c->ms || !c->ss || !c->ob || !c->cc || !c->dl || !c->guard || !c->fl) {
        *err = SN_ENOMEM;
        sn_cluster_destroy(&c);
        return NULL;
    }
    for (int i = 0; i < o->join.n; i++) {
        seed *s = calloc(1, sizeof *s);
        if (!s)
            continue;
        sn_gate_seed(o->join.item[i], s->endpoint, sizeof s->endpoint, s->name,
                      sizeof s->name);
        s->backoff = 0.5;
        s->done = sn_transport_connect(sn_link_transport(c->link), s->endpoint, s->name,
                                       &s->conn) != SN_OK;
        s->next = c->seeds;
        c->seeds = s;
    }
    if (loop) {
        c->loop = loop;
        ev_prepare_init(&c->prepare, on_prepare);
        c->prepare.data = c;
        ev_prepare_start(loop, &c->prepare);
        ev_unref(loop); /* the prepare watcher alone keeps nothing alive */
        double hb = o->heartbeat_ms / 1000.0;
        ev_timer_init(&c->tick, on_tick, hb / 4, hb);
        c->tick.data = c;
        ev_timer_start(loop, &c->tick);
    }
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
    sn_link_lock(c->link); /* probing: to the members it has links to; gossip tells the rest */
    for (sn_member *m = sn_members_first(c->ms); m; m = m->next) {
        if (m->state != SN_MEMBER_DOWN && m->state != SN_MEMBER_LEFT &&
            (m->ctl || !sn_members_probing(c->ms)) && sn_link_encode(c->link, &f) == SN_OK)
            sn_link_send_encoded(c->link, sn_peers_conn(c->link, m, 0));
    }
    sn_link_unlock(c->link);
    sn_log_write(c->log, SN_LOG_INFO, "cluster", "node %s leaves the cluster", c->name);
}

void sn_cluster_destroy(sn_cluster **cp)
{
    if (!cp || !*cp)
        return;
    sn_cluster *c = *cp;
    if (c->loop) {
        ev_timer_stop(c->loop, &c->tick);
        if (ev_is_active(&c->prepare)) {
            ev_ref(c->loop);
            ev_prepare_stop(c->loop, &c->prepare);
        }
    }
    while (c->seeds) {
        seed *s = c->seeds;
        c->seeds = s->next;
        sn_transport_close(sn_link_transport(c->link), &s->conn);
        free(s);
    }
    /* the transport closes the members' connections (with linger, so a LEAVE goes out) */
    sn_link_destroy(&c->link);
    sn_members_destroy(&c->ms);
    sn_sessions_destroy(&c->ss);
    sn_dlock_destroy(&c->dl);
    sn_outbox_destroy(&c->ob);
    sn_flush_destroy(&c->fl);
    sn_codecache_destroy(&c->cc);
    sn_gate_destroy(&c->guard);
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

size_t sn_cluster_members(sn_cluster *c, sn_member_view **out)
{
    return sn_members_view(c->ms, now_of(c), out);
}

void sn_cluster_members_free(sn_member_view *v, size_t n)
{
    sn_members_view_free(v, n);
}

void sn_cluster_peer_counts(sn_cluster *c, size_t counts[4])
{
    sn_members_counts(c->ms, counts);
}

void sn_cluster_stats_get(sn_cluster *c, sn_cluster_stats *s)
{
    sn_link_counts(c->link, &s->bytes_in, &s->bytes_out, &s->frames_in, &s->frames_out);
    s->seq_gaps = atomic_load(&c->seq_gaps);
    s->seq_dups = atomic_load(&c->seq_dups);
    s->refused = atomic_load(&c->refused);
    for (int i = 0; i < SN_GATE_REASONS; i++)
        s->refused_by[i] = sn_gate_count(c->guard, (sn_gate_reason)i);
}

/* ---- the function cache's sender side, locks, code misses -------------------------------- */

int sn_cluster_knows(sn_cluster *c, const char *node, const unsigned char hash[16])
{
    return sn_codecache_knows(c->cc, node, hash);
}

void sn_cluster_sent_code(sn_cluster *c, const char *node, const unsigned char hash[16])
{
    sn_codecache_sent(c->cc, node, hash);
}

int sn_cluster_lock_home(sn_cluster *c, const char *lock, char *home, size_t cap)
{
    return sn_dlock_home(c->ms, c->name, lock, home, cap);
}

int sn_cluster_settled(sn_cluster *c)
{
    return sn_dlock_settled(c->ms, c->seeds != NULL);
}

int sn_cluster_lock_send(sn_cluster *c, const char *home, sn_lock_op op, const char *lock,
                         uint64_t actor, const char *handler, const void *data, size_t len,
                         double ms)
{
    return sn_dlock_send(c->dl, home, op, lock, actor, handler, data, len, ms);
}

void sn_cluster_lock_grant(sn_cluster *c, const char *node, uint64_t actor, const char *handler,
                           const void *data, size_t len)
{
    sn_dlock_grant(c->dl, node, actor, handler, data, len);
}

void sn_cluster_code_miss(sn_cluster *c, const char *node, const unsigned char hash[16])
{
    sn_out *o = sn_out_new(SN_OUT_CODE_MISS, node, NULL, NULL, NULL, NULL, NULL, hash, 16);
    if (o)
        queue_out(c, o);
}
