/* sn_dlock: outstanding acquires in a FIFO list (grants come in arrival order per lock). */
#include "sn_dlock.h"
#include "sn_curve.h"
#include "sn_error.h"
#include "sn_map.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_dlock {
    const sn_cluster_hooks *h;
    sn_outbox *ob;
    sn_members *ms;
    sn_log *log;
    uint64_t self_inc;
    pthread_mutex_t mu;
    sn_dlock_req *head, *tail;
    uint64_t next_request;
};

sn_dlock *sn_dlock_new(const sn_cluster_hooks *h, sn_outbox *ob, sn_members *ms, sn_log *log,
                       uint64_t self_inc)
{
    sn_dlock *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->h = h;
    d->ob = ob;
    d->ms = ms;
    d->log = log;
    d->self_inc = self_inc;
    pthread_mutex_init(&d->mu, NULL);
    d->next_request = 1;
    return d;
}

void sn_dlock_destroy(sn_dlock **dp)
{
    if (!dp || !*dp)
        return;
    sn_dlock *d = *dp;
    sn_dlock_free_list(d->head);
    pthread_mutex_destroy(&d->mu);
    free(d);
    *dp = NULL;
}

int sn_dlock_home(sn_members *ms, const char *self, const char *lock, char *home, size_t cap)
{
    uint64_t best = sn_map_rendezvous(lock, self);
    const char *who = NULL;
    sn_members_lock(ms);
    for (sn_member *m = sn_members_first(ms); m; m = m->next) {
        if (m->state != SN_MEMBER_ALIVE)
            continue;
        uint64_t score = sn_map_rendezvous(lock, m->name);
        if (score > best || (score == best && strcmp(m->name, who ? who : self) < 0)) {
            best = score;
            who = m->name;
        }
    }
    if (who)
        snprintf(home, cap, "%s", who);
    sn_members_unlock(ms);
    return who != NULL;
}

int sn_dlock_settled(sn_members *ms, int seeded)
{
    int met = 0, known = 1;
    sn_members_lock(ms);
    for (sn_member *m = sn_members_first(ms); m; m = m->next) {
        met = 1; /* in any state: once joined, a node whose peers all died is settled */
        if (m->state == SN_MEMBER_ALIVE && m->registry_version == 0)
            known = 0;
    }
    sn_members_unlock(ms);
    return known && (met || !seeded);
}

uint64_t sn_dlock_acquiring(sn_dlock *d, const char *lock, const char *home, uint64_t actor,
                            const char *handler)
{
    sn_dlock_req *r = calloc(1, sizeof *r);
    if (!r)
        return 0;
    snprintf(r->lock, sizeof r->lock, "%s", lock);
    snprintf(r->home, sizeof r->home, "%s", home);
    snprintf(r->handler, sizeof r->handler, "%s", handler ? handler : "");
    r->actor = actor;
    pthread_mutex_lock(&d->mu);
    r->request = d->next_request++;
    if (d->tail)
        d->tail->next = r;
    else
        d->head = r;
    d->tail = r;
    pthread_mutex_unlock(&d->mu);
    return r->request;
}

/* Removes the first request that match() accepts; lock held. */
static int take_first(sn_dlock *d, int (*match)(const sn_dlock_req *, const void *),
                      const void *arg, sn_dlock_req *out)
{
    sn_dlock_req *prev = NULL;
    for (sn_dlock_req *r = d->head; r; prev = r, r = r->next) {
        if (!match(r, arg))
            continue;
        if (prev)
            prev->next = r->next;
        else
            d->head = r->next;
        if (d->tail == r)
            d->tail = prev;
        *out = *r;
        out->next = NULL;
        free(r);
        return 1;
    }
    return 0;
}

typedef struct who {
    uint64_t actor;
    const char *handler;
    const char *home; /* NULL: any home */
} who;

static int match_holder(const sn_dlock_req *r, const void *arg)
{
    const who *w = arg;
    return r->actor == w->actor && strcmp(r->handler, w->handler) == 0 &&
           (!w->home || strcmp(r->home, w->home) == 0);
}

static int match_request(const sn_dlock_req *r, const void *arg)
{
    const sn_dlock_req *w = arg; /* an empty home matches any */
    return r->request == w->request && (!w->home[0] || strcmp(r->home, w->home) == 0);
}

int sn_dlock_granted(sn_dlock *d, uint64_t actor, const char *handler, const char *home,
                     sn_dlock_req *out)
{
    who w = {actor, handler, home};
    pthread_mutex_lock(&d->mu);
    int found = take_first(d, match_holder, &w, out);
    pthread_mutex_unlock(&d->mu);
    return found;
}

int sn_dlock_denied(sn_dlock *d, uint64_t request, const char *home, sn_dlock_req *out)
{
    sn_dlock_req want = {.request = request};
    snprintf(want.home, sizeof want.home, "%s", home ? home : "");
    pthread_mutex_lock(&d->mu);
    int found = take_first(d, match_request, &want, out);
    pthread_mutex_unlock(&d->mu);
    return found;
}

sn_dlock_req *sn_dlock_take_home(sn_dlock *d, const char *home)
{
    sn_dlock_req *out = NULL, **out_tail = &out;
    pthread_mutex_lock(&d->mu);
    sn_dlock_req *prev = NULL;
    for (sn_dlock_req *r = d->head; r;) {
        sn_dlock_req *next = r->next;
        if (strcmp(r->home, home) == 0) {
            if (prev)
                prev->next = next;
            else
                d->head = next;
            if (d->tail == r)
                d->tail = prev;
            r->next = NULL;
            *out_tail = r;
            out_tail = &r->next;
        } else {
            prev = r;
        }
        r = next;
    }
    pthread_mutex_unlock(&d->mu);
    return out;
}

void sn_dlock_free_list(sn_dlock_req *list)
{
    while (list) {
        sn_dlock_req *r = list;
        list = r->next;
        free(r);
    }
}

/* ---- the protocol ----------------------------------------------------------------------- */

static int queue(sn_dlock *d, const char *node, sn_wire_kind kind, const char *lock,
                 uint64_t actor, uint64_t dst_inc, uint64_t request, const char *handler,
                 uint32_t code, const char *text, const void *data, size_t len, double ms)
{
    sn_out *o = sn_out_new(SN_OUT_LOCK, node, lock, handler, NULL, NULL, text, data, len);
    if (!o)
        return SN_ENOMEM;
    o->mode = kind;
    o->actor = actor;
    o->dst_inc = dst_inc;
    o->request = request;
    o->status = (int)code;
    o->ms = ms > 0 ? (uint32_t)ms : 0;
    if (sn_outbox_push(d->ob, o))
        d->h->wake(d->h->ud);
    return SN_OK;
}

static uint64_t inc_of(sn_dlock *d, const char *node)
{
    sn_members_lock(d->ms);
    sn_member *m = sn_members_find(d->ms, node);
    uint64_t inc = m ? m->inc : 0;
    sn_members_unlock(d->ms);
    return inc;
}

int sn_dlock_send(sn_dlock *d, const char *home, sn_lock_op op, const char *lock, uint64_t actor,
                  const char *handler, const void *data, size_t len, double ms)
{
    sn_wire_kind kind = op == SN_LOCK_ACQUIRE  ? SN_WIRE_LOCK_ACQUIRE
                        : op == SN_LOCK_EXTEND ? SN_WIRE_LOCK_EXTEND
                                               : SN_WIRE_LOCK_RELEASE;
    uint64_t request = op == SN_LOCK_ACQUIRE ? sn_dlock_acquiring(d, lock, home, actor, handler) : 0;
    int rc = queue(d, home, kind, lock, actor, inc_of(d, home), request, handler, 0, NULL, data,
                   len, ms);
    sn_dlock_req gone;
    if (rc != SN_OK && request)
        sn_dlock_denied(d, request, NULL, &gone);
    return rc;
}

void sn_dlock_grant(sn_dlock *d, const char *node, uint64_t actor, const char *handler,
                    const void *data, size_t len)
{
    queue(d, node, SN_WIRE_LOCK_GRANT, "", actor, inc_of(d, node), 0, handler, 0, NULL, data,
          len, 0);
}

/* At the home: a request from another node; a refused ACQUIRE is answered with LOCK_DENY.
 * The requester must be a member (sn_gate checked it is the sender when authenticated): an
 * empty or unknown addr.node would have the grant posted to a local actor, or relayed to a
 * member as if this node vouched for its payload. */
static void at_home(sn_dlock *d, const sn_wire_frame *f, sn_gate *g)
{
    const sn_wire_lock *k = &f->u.lock;
    if (!inc_of(d, k->addr.node)) {
        sn_gate_refused(g, SN_GATE_LOCK, "refused a %s for lock '%.64s' from '%.64s': not a "
                         "member", sn_wire_kind_name(f->kind), k->lock, k->addr.node);
        return;
    }
    sn_lock_op op = f->kind == SN_WIRE_LOCK_ACQUIRE  ? SN_LOCK_ACQUIRE
                    : f->kind == SN_WIRE_LOCK_EXTEND ? SN_LOCK_EXTEND
                                                     : SN_LOCK_RELEASE;
    int rc = d->h->lock_at_home(d->h->ud, op, k->lock, k->addr.node, k->addr.actor, k->handler,
                                k->payload.data, k->payload.len, k->ms);
    if (rc == SN_OK || op != SN_LOCK_ACQUIRE)
        return; /* EXTEND or RELEASE by a non-holder: nothing to answer (the lease rules) */
    const char *why = rc == SN_EFULL ? "too many waiters for the lock" : sn_strerror(rc);
    sn_gate_log(g, "lock %s: refused actor %llu of %s: %s", k->lock,
                 (unsigned long long)k->addr.actor, k->addr.node, why);
    queue(d, k->addr.node, SN_WIRE_LOCK_DENY, k->lock, k->addr.actor, k->addr.incarnation,
          k->request, "", rc == SN_EFULL ? SN_WIRE_E_BUSY : SN_WIRE_E_INTERNAL, why, NULL, 0, 0);
}

/* At the requester: the grant goes to the handler within the mailbox cap; a grant that
 * cannot be posted is released at once, so the next waiter goes on. */
static void granted(sn_dlock *d, const sn_wire_frame *f, const char *peer, sn_gate *g)
{
    const sn_wire_lock *k = &f->u.lock;
    sn_dlock_req r;
    /* only a grant for a request of ours, from its home when the sender is authenticated */
    int known = sn_dlock_granted(d, k->addr.actor, k->handler, peer, &r);
    if (!known) {
        sn_gate_refused(g, SN_GATE_LOCK, "refused a LOCK_GRANT for actor %llu, handler "
                         "'%.64s' from %s: no such request there", (unsigned long long)k->addr.actor,
                         k->handler, peer ? peer : "an unauthenticated peer");
        return;
    }
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, k->handler, NULL, NULL, k->payload.data,
                           k->payload.len);
    if (m && sn_curve_trust_bytecode(peer) != SN_OK)
        m->flags |= SN_MSG_F_UNTRUSTED;
    int rc = m ? d->h->post(d->h->ud, k->addr.actor, m, 0) : SN_ENOMEM;
    if (rc == SN_OK)
        return;
    sn_msg_destroy(&m);
    sn_gate_log(g, "lock %s: grant for actor %llu dropped (%s); released at its home", r.lock,
                 (unsigned long long)k->addr.actor, sn_strerror(rc));
    queue(d, r.home, SN_WIRE_LOCK_RELEASE, r.lock, r.actor, inc_of(d, r.home), 0, NULL, 0,
              NULL, NULL, 0, 0);
}

void sn_dlock_frame(sn_dlock *d, const sn_wire_frame *f, const char *peer, sn_gate *g)
{
    sn_dlock_req r;
    int to_us = !f->u.lock.addr.incarnation || f->u.lock.addr.incarnation == d->self_inc;
    if ((f->kind == SN_WIRE_LOCK_GRANT || f->kind == SN_WIRE_LOCK_DENY) && !to_us)
        return; /* for an earlier process of this node */
    switch (f->kind) {
    case SN_WIRE_LOCK_ACQUIRE:
    case SN_WIRE_LOCK_EXTEND:
    case SN_WIRE_LOCK_RELEASE: at_home(d, f, g); break;
    case SN_WIRE_LOCK_GRANT: granted(d, f, peer, g); break;
    case SN_WIRE_LOCK_DENY:
        if (sn_dlock_denied(d, f->u.lock.request, peer, &r))
            sn_cluster_post_error(d->h, r.actor, r.handler, r.home,
                                  f->u.lock.text[0] ? f->u.lock.text : "lock refused");
        break;
    default: break;
    }
}

void sn_dlock_home_gone(sn_dlock *d, const char *home, const char *why)
{
    sn_dlock_req *list = sn_dlock_take_home(d, home);
    for (sn_dlock_req *r = list; r; r = r->next)
        sn_cluster_post_error(d->h, r->actor, r->handler, r->home, why);
    sn_dlock_free_list(list);
}
