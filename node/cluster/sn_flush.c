/* sn_flush: a batch is built from a peer's frames in queue order and sent when the next
 * frame would take it past batch_max, when a frame that does not travel in batches comes
 * (so order holds on the data connection), and at the end of the peer's frames. The flush
 * runs whenever the loop thread wakes with something queued, so a lone message leaves at
 * once and frames only gather while the loop is busy: batching adds no wait. */
#include "sn_flush.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_peers.h"
#include "sn_wire_batch.h"

#include <stdlib.h>

enum { CUT_LOG_EVERY = 60 /* seconds between two "batch_max reached" lines */ };

struct sn_flush {
    const sn_cluster_hooks *h;
    sn_link *link;
    sn_members *ms;
    sn_sessions *ss;
    sn_log *log;
    const char *self;
    uint64_t self_inc;
    size_t batch_max;
    sn_wire_batch batch;
    uint64_t batches, cuts, cuts_logged;
    double cut_logged_at;
};

/* The frames of the batch being built, in order. */
typedef struct pending {
    sn_out *head, **end;
    size_t numbered; /* MESSAGE and REPLY frames among them: sequence numbers taken */
} pending;

sn_flush *sn_flush_new(const sn_cluster_hooks *h, sn_link *link, sn_members *ms,
                       sn_sessions *ss, sn_log *log, const char *self, uint64_t self_inc,
                       size_t batch_max)
{
    sn_flush *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    *f = (sn_flush){.h = h, .link = link, .ms = ms, .ss = ss, .log = log, .self = self,
                    .self_inc = self_inc, .batch_max = batch_max, .cut_logged_at = -1e9};
    sn_wire_batch_init(&f->batch);
    return f;
}

void sn_flush_destroy(sn_flush **fp)
{
    if (!fp || !*fp)
        return;
    sn_wire_batch_fini(&(*fp)->batch);
    free(*fp);
    *fp = NULL;
}

void sn_flush_counts(const sn_flush *f, uint64_t *batches, uint64_t *cuts)
{
    *batches = f->batches;
    *cuts = f->cuts;
}

static int numbered(const sn_out *o)
{
    return o->kind == SN_OUT_MESSAGE || o->kind == SN_OUT_REPLY;
}

/* CODE_MISS goes with the control frames; MESSAGE, REPLY and LOCK frames on the data
 * connection, made when the first one goes (sn_peers). */
static sn_conn *conn_of(sn_flush *f, sn_member *m, const sn_out *o)
{
    return sn_peers_conn(f->link, m, o->kind != SN_OUT_CODE_MISS);
}

/* n messages for m left the outbox: its count of queued messages goes down (one lock for a
 * whole batch). */
static void unqueue(sn_flush *f, sn_member *m, size_t n)
{
    if (!m || !n)
        return;
    sn_members_lock(f->ms);
    m->queued -= m->queued < n ? m->queued : n;
    sn_members_unlock(f->ms);
}

/* o failed for good (rc not SN_OK): a requester whose request never left hears it now. */
static void told(sn_flush *f, const sn_out *o, int rc)
{
    sn_session q;
    if (rc != SN_OK && o->kind == SN_OUT_MESSAGE && o->session &&
        sn_sessions_take(f->ss, o->session, &q))
        sn_cluster_post_error(f->h, q.actor, q.rid, o->node, sn_strerror(SN_EDOWN));
}

/* o is done with: sent (rc SN_OK) or failed for good. */
static void out_done(sn_flush *f, sn_member *m, const sn_out *o, int rc)
{
    unqueue(f, m, o->kind == SN_OUT_MESSAGE);
    told(f, o, rc);
}

/* One frame alone. SN_EFULL: the peer's queue is full, o stays the caller's with its number
 * given back; otherwise o is done with (the caller frees it). */
static int send_one(sn_flush *f, sn_member *m, sn_out *o)
{
    int rc = SN_ENOENT;
    if (m && sn_outbox_reachable(m, o)) {
        sn_wire_frame w;
        sn_outbox_frame(o, f->self, f->self_inc, m, &w);
        rc = sn_link_send(f->link, conn_of(f, m, o), &w);
        if (rc != SN_OK && numbered(o))
            m->seq_out--; /* not sent: its number goes to the retry, or to the next frame */
        if (rc == SN_EFULL)
            return rc;
    } else if (o->kind == SN_OUT_REPLY) {
        sn_log_write(f->log, SN_LOG_DEBUG, "cluster", "reply for %s dropped: it left, or "
                     "restarted", o->node);
    }
    out_done(f, m, o, rc);
    return rc;
}

int sn_flush_one(sn_flush *f, sn_member *m, sn_out *o)
{
    return send_one(f, m, o);
}

/* Sends the batch being built. Its frames are done with and freed, unless the peer's queue
 * is full: SN_EFULL, their numbers given back, p as it was for the caller to keep. */
static int send_batch(sn_flush *f, sn_member *m, pending *p)
{
    if (!p->head)
        return SN_OK;
    const char *data;
    size_t len;
    sn_wire_batch_finish(&f->batch, &data, &len);
    int rc = sn_link_send_bytes(f->link, conn_of(f, m, p->head), data, len);
    if (rc != SN_OK)
        m->seq_out -= p->numbered;
    if (rc == SN_EFULL)
        return rc;
    if (rc == SN_OK && p->head->next)
        f->batches++;
    size_t messages = 0;
    for (const sn_out *o = p->head; o; o = o->next)
        messages += o->kind == SN_OUT_MESSAGE;
    unqueue(f, m, messages);
    for (sn_out *o = p->head, *next; o; o = next) {
        next = o->next;
        told(f, o, rc);
        sn_out_free(o);
    }
    p->head = NULL;
    p->end = &p->head;
    p->numbered = 0;
    sn_wire_batch_reset(&f->batch);
    return rc;
}

/* What a peer whose queue is full keeps: the batch being built, then o and the rest. */
static sn_out *keep(pending *p, sn_out *o, sn_out *rest)
{
    if (o) {
        o->next = rest;
        *p->end = o;
    }
    return p->head;
}

static void cut(sn_flush *f, const sn_member *m)
{
    f->cuts++;
    double now = sn_clock_mono();
    if (now - f->cut_logged_at < CUT_LOG_EVERY)
        return;
    sn_log_write(f->log, SN_LOG_INFO, "cluster", "a batch to %s reached --set batch_max=%zu "
                 "bytes: the rest goes in the next one (%llu times since the last line; "
                 "logged at most once a minute)", m->name, f->batch_max,
                 (unsigned long long)(f->cuts - f->cuts_logged));
    f->cuts_logged = f->cuts;
    f->cut_logged_at = now;
}

/* One peer's frames (sn_outbox_flush_peers): what is not sent is returned, in order. */
static sn_out *send_peer(sn_out *list, void *ud)
{
    sn_flush *f = ud;
    sn_member *m = sn_members_find(f->ms, list->node);
    pending p = {NULL, &p.head, 0};
    sn_wire_batch_reset(&f->batch);
    for (sn_out *o = list, *next; o; o = next) {
        next = o->next;
        o->next = NULL;
        if (!m || !m->batch || !f->batch_max || o->kind == SN_OUT_CODE_MISS ||
            !sn_outbox_reachable(m, o)) {
            int rc = send_batch(f, m, &p); /* what goes before it, first */
            if (rc != SN_EFULL)
                rc = send_one(f, m, o);
            if (rc == SN_EFULL)
                return keep(&p, o, next);
            sn_out_free(o);
            continue;
        }
        sn_wire_frame w;
        sn_outbox_frame(o, f->self, f->self_inc, m, &w);
        const sn_buf *enc = sn_link_buf(f->link);
        int rc = sn_link_encode(f->link, &w); /* logged there */
        if (rc == SN_OK && p.head && sn_wire_batch_size(&f->batch, enc->len) > f->batch_max) {
            cut(f, m);
            if (send_batch(f, m, &p) == SN_EFULL) {
                m->seq_out -= (uint64_t)numbered(o);
                return keep(&p, o, next);
            }
        }
        if (rc == SN_OK)
            rc = sn_wire_batch_add(&f->batch, enc->data, enc->len);
        if (rc != SN_OK) { /* o's number was the last one taken: give it back */
            m->seq_out -= (uint64_t)numbered(o);
            out_done(f, m, o, rc);
            sn_out_free(o);
            continue;
        }
        *p.end = o;
        p.end = &o->next;
        p.numbered += (size_t)numbered(o);
    }
    return send_batch(f, m, &p) == SN_EFULL ? keep(&p, NULL, NULL) : NULL;
}

int sn_flush_direct(sn_flush *f, sn_outbox *ob, sn_out *o, void (*wake)(void *), void *ud)
{
    if (!sn_link_trylock(f->link))
        return 0; /* the loop thread is at work: it will flush soon */
    int sent = 0;
    sn_members_lock(f->ms); /* the loop writes members only with the link held: a short hold */
    sn_member *m = sn_members_find(f->ms, o->node);
    sn_members_unlock(f->ms);
    /* nothing may overtake a frame queued (or kept, its peer full) before it */
    if (m && m->data && sn_outbox_empty(ob) && sn_flush_one(f, m, o) != SN_EFULL) {
        sent = 1;
        if (sn_transport_readable(sn_link_transport(f->link), m->data))
            wake(ud);
        sn_out_free(o);
    }
    sn_link_unlock(f->link);
    return sent;
}

void sn_flush_run(sn_flush *f, sn_outbox *ob)
{
    sn_outbox_flush_peers(ob, send_peer, f);
}
