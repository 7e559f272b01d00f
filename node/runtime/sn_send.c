/* sn_send: a local instance is an actor id, a remote one a node name; both come from the
 * router. No fixed cap: the lists of targets grow as needed. */
#include "sn_send.h"
#include "sn_error.h"

#include <stdio.h>
#include <stdlib.h>

/* A copy of the template for one actor. */
static sn_msg *copy_msg(const sn_msg *t)
{
    sn_msg *m = sn_msg_new_from(t->kind, t->name, t->reply, t->src_stage, t->src_node,
                                t->src_inc, t->session, t->data, t->len);
    if (m) {
        m->src = t->src;
        m->handle = t->handle;
        m->flags = t->flags;
        m->deadline = t->deadline;
    }
    return m;
}

/* One routing: the template, until a mailbox takes it. */
typedef struct route {
    sn_node *n;
    const sn_send *s;
    sn_msg *msg;     /* the template; NULL once a mailbox took it */
    const char *src; /* the sender's stage, for counting */
    int fail;        /* the failure to report if nothing is queued */
} route;

/* Folds one attempt's result into the failure to report: full beats no route. */
static void note(route *r, int rc)
{
    if (rc == SN_EFULL || r->fail == SN_EFULL)
        r->fail = SN_EFULL;
    else if (rc == SN_ENOMEM || rc == SN_ECLOSED)
        r->fail = rc;
}

static void count_out(route *r)
{
    if (r->s->src_counts)
        sn_stats_sent(sn_node_stats(r->n), r->s->src_counts);
    else
        sn_stats_count(sn_node_stats(r->n), SN_COUNT_OUT, r->src, NULL);
}

/* Queues the message for actor: the template itself when take (it is the last use), else
 * a copy. */
static int post_local(route *r, uint64_t actor, int take)
{
    sn_msg *m = take ? r->msg : copy_msg(r->msg);
    if (!m)
        return SN_ENOMEM;
    int rc = sn_node_post(r->n, actor, m, 0);
    if (rc != SN_OK) {
        if (!take)
            sn_msg_destroy(&m);
        return rc;
    }
    if (take)
        r->msg = NULL;
    if (r->s->count_out)
        count_out(r);
    return SN_OK;
}

static int post_remote(route *r, const char *node, int mode)
{
    const sn_send *s = r->s;
    sn_buf own;
    sn_buf_init(&own);
    const void *data = r->msg->data;
    size_t len = r->msg->len;
    if (s->encode && s->encode(s->ud, node, &own) == SN_OK) {
        data = own.data;
        len = own.len;
    }
    int rc = sn_node_remote_send(r->n, node, mode, s->stage, r->msg, data, len);
    sn_buf_fini(&own);
    if (rc == SN_OK && s->count_out)
        count_out(r);
    return rc;
}

static size_t broadcast_local(route *r)
{
    sn_router *router = sn_node_router(r->n);
    size_t count = sn_router_count(router, r->s->stage);
    uint64_t *ids = count ? malloc(count * sizeof *ids) : NULL;
    if (count && !ids) {
        r->fail = SN_ENOMEM;
        return 0;
    }
    count = ids ? sn_router_all(router, r->s->stage, ids, count) : 0;
    size_t queued = 0;
    for (size_t i = 0; i < count; i++) {
        int rc = post_local(r, ids[i], i + 1 == count); /* the last takes the template */
        queued += rc == SN_OK;
        note(r, rc);
    }
    free(ids);
    return queued;
}

static size_t broadcast_remote(route *r)
{
    sn_router *router = sn_node_router(r->n);
    size_t cap = 16, nn;
    char (*nodes)[SN_ROUTER_NODE_MAX] = NULL;
    uint32_t *counts = NULL;
    for (;;) { /* grow until every node fits: no fixed cap */
        void *a = realloc(nodes, cap * sizeof *nodes), *b;
        if (a)
            nodes = a;
        b = a ? realloc(counts, cap * sizeof *counts) : NULL;
        if (!b) {
            free(nodes);
            free(counts);
            r->fail = SN_ENOMEM;
            return 0;
        }
        counts = b;
        nn = sn_router_nodes(router, r->s->stage, nodes, counts, cap);
        if (nn < cap)
            break;
        cap *= 2;
    }
    size_t queued = 0;
    for (size_t i = 0; i < nn; i++) { /* each node delivers to all of its own */
        int rc = post_remote(r, nodes[i], SN_WIRE_ALL);
        queued += rc == SN_OK ? counts[i] : 0;
        note(r, rc);
    }
    free(nodes);
    free(counts);
    return queued;
}

/* Round-robin over the instances in scope, skipping full ones: the first that takes it. */
static size_t one(route *r)
{
    sn_router *router = sn_node_router(r->n);
    sn_route to;
    for (size_t k = 0; sn_router_route(router, r->s->stage, r->s->scope, k, &to); k++) {
        int rc = to.actor ? post_local(r, to.actor, 1) : post_remote(r, to.node, SN_WIRE_ONE);
        if (rc == SN_OK)
            return 1;
        note(r, rc);
    }
    return 0;
}

int sn_send_route(sn_node *n, const sn_send *s, size_t *queued)
{
    /* not the template's src_stage: a mailbox may take the template and a worker free it */
    route r = {n, s, s->msg, s->src_stage ? s->src_stage : "", SN_ENOENT};
    size_t q = 0;
    if (s->actor) {
        int rc = post_local(&r, s->actor, 1);
        q = rc == SN_OK;
        r.fail = rc;
    } else if (s->node) { /* a built-in stage's home: that node or nothing, never another */
        int rc = post_remote(&r, s->node, s->broadcast ? SN_WIRE_ALL : SN_WIRE_ONE);
        q = rc == SN_OK;
        r.fail = rc == SN_ENOENT ? SN_EDOWN : rc;
    } else if (s->broadcast) {
        if (s->scope != SN_SCOPE_LOCAL) /* first: the last local post takes the template */
            q += broadcast_remote(&r);
        if (s->scope != SN_SCOPE_REMOTE)
            q += broadcast_local(&r);
    } else {
        q = one(&r);
    }
    sn_msg_destroy(&r.msg); /* when no mailbox took it */
    *queued = q;
    if (q)
        return SN_OK;
    const char *stage = s->stage && s->stage[0] ? s->stage : r.src;
    sn_stats_count(sn_node_stats(n), SN_COUNT_DROP, stage,
                   r.fail == SN_EFULL     ? "mailbox_full"
                   : r.fail == SN_ECLOSED ? "closed"
                   : r.fail == SN_EDOWN   ? "node_down"
                                          : "no_route");
    return r.fail;
}

const char *sn_send_why(int rc, const char *stage, char *buf, size_t len)
{
    switch (rc) { /* the route's codes, as the one table of failure texts names them */
    case SN_EFULL: return sn_error_text(SN_EFULL, NULL, buf, len);
    case SN_ENOENT: return sn_error_text(SN_ENOROUTE, stage && stage[0] ? stage : "self", buf, len);
    case SN_ECLOSED:
    case SN_EDOWN: return sn_error_text(SN_EDOWN, NULL, buf, len);
    default: return sn_error_text(rc, NULL, buf, len);
    }
}
