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
    }
    return m;
}

static const char *src_stage(const sn_send *s)
{
    return s->msg->src_stage ? s->msg->src_stage : "";
}

static int post_local(sn_node *n, const sn_send *s, uint64_t actor)
{
    sn_msg *m = copy_msg(s->msg);
    if (!m)
        return SN_ENOMEM;
    int rc = sn_node_post(n, actor, m, 0);
    if (rc != SN_OK)
        sn_msg_destroy(&m);
    else if (s->count_out)
        sn_stats_count(sn_node_stats(n), SN_COUNT_OUT, src_stage(s), NULL);
    return rc;
}

static int post_remote(sn_node *n, const sn_send *s, const char *node, int mode)
{
    sn_buf own;
    sn_buf_init(&own);
    const void *data = s->msg->data;
    size_t len = s->msg->len;
    if (s->encode && s->encode(s->ud, node, &own) == SN_OK) {
        data = own.data;
        len = own.len;
    }
    int rc = sn_node_remote_send(n, node, mode, s->stage, s->msg, data, len);
    sn_buf_fini(&own);
    if (rc == SN_OK && s->count_out)
        sn_stats_count(sn_node_stats(n), SN_COUNT_OUT, src_stage(s), NULL);
    return rc;
}

/* Folds one attempt's result into the failure to report: full beats no route. */
static void note(int rc, int *fail)
{
    if (rc == SN_EFULL || *fail == SN_EFULL)
        *fail = SN_EFULL;
    else if (rc == SN_ENOMEM)
        *fail = SN_ENOMEM;
}

static size_t broadcast_local(sn_node *n, const sn_send *s, int *fail)
{
    sn_router *r = sn_node_router(n);
    size_t count = sn_router_count(r, s->stage);
    uint64_t *ids = count ? malloc(count * sizeof *ids) : NULL;
    if (count && !ids) {
        *fail = SN_ENOMEM;
        return 0;
    }
    count = ids ? sn_router_all(r, s->stage, ids, count) : 0;
    size_t queued = 0;
    for (size_t i = 0; i < count; i++) {
        int rc = post_local(n, s, ids[i]);
        queued += rc == SN_OK;
        note(rc, fail);
    }
    free(ids);
    return queued;
}

static size_t broadcast_remote(sn_node *n, const sn_send *s, int *fail)
{
    sn_router *r = sn_node_router(n);
    size_t cap = 16, nn;
    char (*nodes)[SN_ROUTER_NODE_MAX] = NULL;
    uint32_t *counts = NULL;
    for (;;) { /* grow until every node fits */
        void *a = realloc(nodes, cap * sizeof *nodes), *b;
        if (a)
            nodes = a;
        b = a ? realloc(counts, cap * sizeof *counts) : NULL;
        if (!b) {
            free(nodes);
            free(counts);
            *fail = SN_ENOMEM;
            return 0;
        }
        counts = b;
        nn = sn_router_nodes(r, s->stage, nodes, counts, cap);
        if (nn < cap)
            break;
        cap *= 2;
    }
    size_t queued = 0;
    for (size_t i = 0; i < nn; i++) { /* each node delivers to all of its own */
        int rc = post_remote(n, s, nodes[i], SN_WIRE_ALL);
        queued += rc == SN_OK ? counts[i] : 0;
        note(rc, fail);
    }
    free(nodes);
    free(counts);
    return queued;
}

/* Round-robin over the instances in scope, skipping full ones: the first that takes it. */
static size_t one(sn_node *n, const sn_send *s, int *fail)
{
    sn_router *r = sn_node_router(n);
    sn_route route;
    for (size_t k = 0; sn_router_route(r, s->stage, s->scope, k, &route); k++) {
        int rc = route.actor ? post_local(n, s, route.actor)
                             : post_remote(n, s, route.node, SN_WIRE_ONE);
        if (rc == SN_OK)
            return 1;
        note(rc, fail);
    }
    return 0;
}

int sn_send_route(sn_node *n, const sn_send *s, size_t *queued)
{
    int fail = SN_ENOENT;
    size_t q = 0;
    if (s->actor) {
        int rc = post_local(n, s, s->actor);
        q = rc == SN_OK;
        fail = rc == SN_ENOENT ? SN_ENOENT : rc;
    } else if (s->broadcast) {
        if (s->scope != SN_SCOPE_REMOTE)
            q += broadcast_local(n, s, &fail);
        if (s->scope != SN_SCOPE_LOCAL)
            q += broadcast_remote(n, s, &fail);
    } else {
        q = one(n, s, &fail);
    }
    *queued = q;
    if (q)
        return SN_OK;
    const char *stage = s->stage && s->stage[0] ? s->stage : src_stage(s);
    sn_stats_count(sn_node_stats(n), SN_COUNT_DROP, stage,
                   fail == SN_EFULL ? "mailbox_full" : "no_route");
    return fail;
}

const char *sn_send_why(int rc, const char *stage, char *buf, size_t len)
{
    switch (rc) {
    case SN_EFULL: snprintf(buf, len, "mailbox full"); break;
    case SN_ENOENT:
        snprintf(buf, len, "no route to %s", stage && stage[0] ? stage : "self");
        break;
    case SN_ECLOSED: snprintf(buf, len, "node down"); break;
    default: snprintf(buf, len, "%s", sn_strerror(rc)); break;
    }
    return buf;
}
