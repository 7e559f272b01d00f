/* sn_bdeliver: a connection's events (accept, data, close) to its owner's mailbox.
 *
 * What the loop reads in one iteration waits in the connection's pend list, and is posted
 * before the loop next waits (sn_bdeliver_flush, from the broker's ev_prepare): the owner's
 * worker is woken once for the reads of a whole iteration, not once for each. Posted one by
 * one as they came, each read woke a sleeping worker (a futex wake and a context switch),
 * which then ran one message and slept again: that cost the node more CPU than the script.
 *
 * A connection whose next event does not fit in its owner's full mailbox stops reading until
 * it fits (the client feels TCP backpressure): the retry timer posts what waits, backing off
 * from 2 ms to 64 ms. Nothing read is dropped. A closed connection whose events still wait
 * stays in the broker's map (dead) until they are posted, then is freed here. */
#include "sn_bconn.h"
#include "sn_error.h"
#include "sn_node.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The payload of an SN_MSG_BROKER message: flags, err, listener, peer, local, then data. */
sn_msg *sn_bconn_event_new(const char *what, uint64_t socket, uint64_t listener, unsigned flags,
                           int err, const void *peer, size_t plen, const void *local,
                           size_t llen, const void *data, size_t len)
{
    size_t hl = 1 + 4 + 8 + 1 + plen + 1 + llen;
    unsigned char small[2048]; /* most events: no allocation besides the message's own */
    unsigned char *p = hl + len <= sizeof small ? small : malloc(hl + len);
    if (!p)
        return NULL;
    unsigned char *q = p;
    *q++ = (unsigned char)flags;
    memcpy(q, &err, 4), q += 4;
    memcpy(q, &listener, 8), q += 8;
    *q++ = (unsigned char)plen;
    if (plen)
        memcpy(q, peer, plen), q += plen;
    *q++ = (unsigned char)llen;
    if (llen)
        memcpy(q, local, llen), q += llen;
    if (len)
        memcpy(q, data, len);
    sn_msg *m = sn_msg_new(SN_MSG_BROKER, what, NULL, NULL, p, hl + len);
    if (p != small)
        free(p);
    if (m)
        m->handle = socket;
    return m;
}

static void conn_pause(bconn *c)
{
    if (c->paused)
        return;
    c->paused = 1;
    ev_io_stop(c->b->ev, &c->rio);
    if (c->l)
        atomic_fetch_add(&c->l->paused, 1);
    c->retry_s = 0.002;
    ev_timer_set(&c->retry, c->retry_s, 0);
    ev_timer_start(c->b->ev, &c->retry);
}

/* Posts c's waiting events in order while they fit: 1 when none is left, 0 when the owner's
 * mailbox is full. An owner that is gone closes the connection (its events are dropped). */
static int pend_post(bconn *c)
{
    while (c->pend) {
        sn_msg *m = c->pend;
        sn_msg *next = m->next;
        int rc = sn_node_post(c->b->node, c->actor, m, (int)m->session);
        if (rc == SN_EFULL)
            return 0;
        c->pend = next;
        if (rc != SN_OK) {
            sn_msg_destroy(&m);
            if (!c->dead) /* its close event joins pend, and is dropped the same way */
                sn_bconn_close(c, rc == SN_ECLOSED ? SN_BCLOSE_SHUTDOWN : SN_BCLOSE_OWNER, 0,
                               "the owning actor is gone");
        }
    }
    c->pend_tail = NULL;
    return 1;
}

/* A closed connection whose events are all posted: out of the map, freed. */
static void free_drained(bconn *c)
{
    ev_timer_stop(c->b->ev, &c->retry);
    sn_map_del(c->b->socks, c->id);
    free(c);
}

/* Queues c for the next flush. When the list cannot grow, c's events are posted now. */
static void post_later(bconn *c)
{
    sn_broker *b = c->b;
    int first = !b->posts.len;
    if (sn_bconn_ids_push(&b->posts, c->id)) {
        if (!pend_post(c)) {
            conn_pause(c);
        } else if (c->dead) { /* closed by a gone owner: its caller's sn_bconn_done frees
                               * it, which must not leave it in the map */
            ev_timer_stop(b->ev, &c->retry);
            sn_map_del(b->socks, c->id);
        }
        return;
    }
    if (first) /* the loop runs to the flush even if nothing else holds it (a join's last
                * socket just closed) */
        ev_ref(b->ev);
    c->posting = 1;
}

/* Queues m (forced: a close or connect, which take no one's place) behind c's other events,
 * to be posted before the loop next waits. The message's session field marks a forced one. */
void sn_bconn_deliver(bconn *c, sn_msg *m, int force)
{
    m->session = (uint64_t)force;
    m->next = NULL;
    if (c->pend)
        c->pend_tail->next = m;
    else
        c->pend = m;
    c->pend_tail = m;
    if (!c->paused && !c->posting) /* a paused one's retry timer posts it */
        post_later(c);
}

void sn_bdeliver_flush(sn_broker *b)
{
    /* by id: a socket freed meanwhile is gone from the map. pend_post may close a socket,
     * which queues no new post (its close event joins pend), so the list does not move. */
    size_t n = sn_bconn_ids_n(&b->posts);
    for (size_t i = 0; i < n; i++) {
        bconn *c = sn_map_get(b->socks, sn_bconn_ids_at(&b->posts, i));
        if (!c || !c->posting)
            continue;
        c->posting = 0;
        if (c->paused)
            continue;
        if (!pend_post(c))
            conn_pause(c);
        else if (c->dead)
            free_drained(c);
    }
    if (n)
        ev_unref(b->ev);
    sn_buf_reset(&b->posts);
}

void sn_bconn_event(bconn *c, const char *what, unsigned flags, const void *data, size_t len,
                    const void *peer, size_t peer_len)
{
    sn_msg *m = sn_bconn_event_new(what, c->id, 0, flags, 0, peer, peer_len, NULL, 0, data, len);
    if (!m) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
        return;
    }
    if (c->l) {
        atomic_fetch_add(&c->l->frames_in, 1);
        atomic_fetch_add(&c->l->bytes_in, len);
    }
    c->last_io = sn_bconn_now(c->b);
    sn_bconn_deliver(c, m, 0);
}

void sn_bconn_on_retry(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev, (void)revents;
    bconn *c = w->data;
    if (!pend_post(c)) {
        c->retry_s = c->retry_s < 0.064 ? c->retry_s * 2 : 0.064;
        ev_timer_set(&c->retry, c->retry_s, 0);
        ev_timer_start(c->b->ev, &c->retry);
        return;
    }
    if (c->dead) {
        free_drained(c);
        return;
    }
    c->paused = 0;
    ev_io_start(c->b->ev, &c->rio);
    sn_bconn_read(c); /* what is buffered already (a frame, wslay's input) */
    sn_bconn_done(c);
}
