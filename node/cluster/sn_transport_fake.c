/* sn_transport_fake: each transport has an inbox for its listening endpoint, and each of its
 * connections an inbox for answers. A send copies the frame into the inbox of the endpoint's
 * transport with the connection's id as the sender identity; an answer finds the connection
 * by that id. Closing during a drain only marks the connection, as the ZeroMQ one does. */
#include "sn_transport_fake.h"
#include "sn_error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    struct item *next;
    uint64_t from; /* the sending connection's id (listening inbox) */
    char peer[64]; /* the sender's authenticated name; "" = none */
    size_t len;
    char data[];
} item;

typedef struct queue {
    item *head, *tail;
    size_t n;
} queue;

typedef struct ft ft;

struct sn_conn {
    sn_conn *next;    /* in its transport */
    sn_conn *all;     /* in the network */
    ft *owner;
    uint64_t id;
    char endpoint[256];
    char peer[64];    /* the node expected there ("" = any): a listener of another identity
                       * is unreachable, as a CURVE server with another key */
    queue inbox;      /* answers */
    int closing;
};

typedef struct opened {
    struct opened *next;
    char endpoint[256];
    size_t count;
} opened;

typedef struct cut { /* frames from `from` to `to` are lost; "" matches any endpoint */
    struct cut *next;
    char from[256], to[256];
} cut;

struct ft {
    sn_transport base;
    sn_fake_net *net;
    ft *next;
    char endpoint[256];
    char identity[64]; /* the name this transport authenticates as; "" = none */
    int listening;
    queue inbox;
    sn_conn *conns;
    int draining;
};

struct sn_fake_net {
    ft *transports;
    sn_conn *conns;
    cut *cuts;
    opened *opened;
    uint64_t next_id;
    size_t cap;
};

static void queue_clear(queue *q)
{
    while (q->head) {
        item *i = q->head;
        q->head = i->next;
        free(i);
    }
    q->tail = NULL;
    q->n = 0;
}

static int queue_push(queue *q, uint64_t from, const char *peer, const void *data, size_t len)
{
    item *i = malloc(sizeof *i + (len ? len : 1));
    if (!i)
        return SN_ENOMEM;
    i->next = NULL;
    i->from = from;
    snprintf(i->peer, sizeof i->peer, "%s", peer);
    i->len = len;
    memcpy(i->data, data, len);
    if (q->tail)
        q->tail->next = i;
    else
        q->head = i;
    q->tail = i;
    q->n++;
    return SN_OK;
}

static int is_cut(sn_fake_net *n, const char *from, const char *to)
{
    for (cut *c = n->cuts; c; c = c->next) {
        if ((!c->from[0] || strcmp(c->from, from) == 0) && (!c->to[0] || strcmp(c->to, to) == 0))
            return 1;
    }
    return 0;
}

static ft *listener(sn_fake_net *n, const char *endpoint)
{
    for (ft *t = n->transports; t; t = t->next) {
        if (t->listening && strcmp(t->endpoint, endpoint) == 0)
            return t;
    }
    return NULL;
}

static int ft_connect(sn_transport *base, const char *endpoint, const char *peer, sn_conn **out)
{
    ft *t = (ft *)base;
    sn_conn *c = calloc(1, sizeof *c);
    if (!c)
        return SN_ENOMEM;
    c->owner = t;
    c->id = ++t->net->next_id;
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "");
    c->next = t->conns;
    t->conns = c;
    c->all = t->net->conns;
    t->net->conns = c;
    opened *o = t->net->opened;
    while (o && strcmp(o->endpoint, endpoint) != 0)
        o = o->next;
    if (!o && (o = calloc(1, sizeof *o))) {
        snprintf(o->endpoint, sizeof o->endpoint, "%s", endpoint);
        o->next = t->net->opened;
        t->net->opened = o;
    }
    if (o)
        o->count++;
    *out = c;
    return SN_OK;
}

static void unlink_conn(ft *t, sn_conn *c)
{
    for (sn_conn **pp = &t->net->conns; *pp; pp = &(*pp)->all) {
        if (*pp == c) {
            *pp = c->all;
            break;
        }
    }
    queue_clear(&c->inbox);
    free(c);
}

static void reap(ft *t)
{
    for (sn_conn **pp = &t->conns; *pp;) {
        sn_conn *c = *pp;
        if (c->closing) {
            *pp = c->next;
            unlink_conn(t, c);
        } else {
            pp = &c->next;
        }
    }
}

static void ft_close(sn_transport *base, sn_conn *conn, int gently)
{
    (void)gently; /* a send delivers at once: nothing is ever left queued */
    ft *t = (ft *)base;
    conn->closing = 1;
    if (!t->draining)
        reap(t);
}

static int ft_send(sn_transport *base, sn_conn *conn, const void *data, size_t len)
{
    ft *t = (ft *)base;
    if (conn->closing)
        return SN_ENOENT;
    ft *to = listener(t->net, conn->endpoint);
    if (!to || is_cut(t->net, t->endpoint, conn->endpoint))
        return SN_OK; /* lost on the way, as on a network */
    if (conn->peer[0] && to->identity[0] && strcmp(conn->peer, to->identity) != 0)
        return SN_OK; /* another node's key: the handshake never completes */
    if (t->net->cap && to->inbox.n >= t->net->cap)
        return SN_EFULL;
    return queue_push(&to->inbox, conn->id, to->identity[0] ? t->identity : "", data, len);
}

static int ft_answer(sn_transport *base, const void *id, size_t idlen, const void *data,
                     size_t len)
{
    ft *t = (ft *)base;
    uint64_t want;
    if (!t->listening || idlen != sizeof want)
        return SN_ENOENT;
    memcpy(&want, id, sizeof want);
    for (sn_conn *c = t->net->conns; c; c = c->all) {
        if (c->id == want && !c->closing) {
            if (is_cut(t->net, t->endpoint, c->owner->endpoint))
                return SN_OK;
            return queue_push(&c->inbox, 0, c->owner->identity[0] ? t->identity : "", data, len);
        }
    }
    return SN_ENOENT;
}

/* Hands up the frames there are now; frames queued by fn wait for the next drain. */
static void drain_queue(queue *q, int is_listener, sn_transport_frame_fn fn, void *ud,
                        const sn_conn *conn)
{
    size_t n = q->n;
    while (n-- && q->head && !(conn && conn->closing)) {
        item *i = q->head;
        q->head = i->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        const char *peer = i->peer[0] ? i->peer : NULL;
        if (is_listener)
            fn(ud, i->data, i->len, &i->from, sizeof i->from, peer);
        else
            fn(ud, i->data, i->len, NULL, 0, peer);
        free(i);
    }
}

static void ft_drain(sn_transport *base, sn_transport_frame_fn fn, void *ud)
{
    ft *t = (ft *)base;
    t->draining = 1;
    drain_queue(&t->inbox, 1, fn, ud, NULL);
    for (sn_conn *c = t->conns; c; c = c->next) {
        if (!c->closing)
            drain_queue(&c->inbox, 0, fn, ud, c);
    }
    t->draining = 0;
    reap(t);
}

static void ft_destroy(sn_transport *base)
{
    ft *t = (ft *)base;
    for (sn_conn *c = t->conns; c; c = c->next)
        c->closing = 1;
    reap(t);
    for (ft **pp = &t->net->transports; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    queue_clear(&t->inbox);
    free(t);
}

static const sn_transport_ops ft_ops = {ft_connect, ft_close, ft_send, ft_answer, ft_drain,
                                        ft_destroy, NULL /* every peer: no allow list */,
                                        NULL /* nothing to miss: never readable */};

sn_transport *sn_transport_fake_new(sn_fake_net *n, const char *endpoint)
{
    return sn_transport_fake_new_as(n, endpoint, NULL);
}

sn_transport *sn_transport_fake_new_as(sn_fake_net *n, const char *endpoint, const char *identity)
{
    if (endpoint && listener(n, endpoint))
        return NULL;
    ft *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->base.ops = &ft_ops;
    t->net = n;
    snprintf(t->identity, sizeof t->identity, "%s", identity ? identity : "");
    if (endpoint) {
        snprintf(t->endpoint, sizeof t->endpoint, "%s", endpoint);
        t->listening = 1;
    }
    t->next = n->transports;
    n->transports = t;
    return &t->base;
}

sn_fake_net *sn_fake_net_new(void)
{
    return calloc(1, sizeof(sn_fake_net));
}

void sn_fake_net_destroy(sn_fake_net **np)
{
    if (!np || !*np)
        return;
    sn_fake_net *n = *np;
    while (n->cuts) {
        cut *c = n->cuts;
        n->cuts = c->next;
        free(c);
    }
    while (n->opened) {
        opened *o = n->opened;
        n->opened = o->next;
        free(o);
    }
    free(n);
    *np = NULL;
}

void sn_fake_net_cut_link(sn_fake_net *n, const char *from, const char *to, int on)
{
    for (cut **pp = &n->cuts; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->from, from) == 0 && strcmp((*pp)->to, to) == 0) {
            if (!on) {
                cut *c = *pp;
                *pp = c->next;
                free(c);
            }
            return;
        }
    }
    cut *c = on ? calloc(1, sizeof *c) : NULL;
    if (c) {
        snprintf(c->from, sizeof c->from, "%s", from);
        snprintf(c->to, sizeof c->to, "%s", to);
        c->next = n->cuts;
        n->cuts = c;
    }
}

void sn_fake_net_cut(sn_fake_net *n, const char *endpoint, int on)
{
    sn_fake_net_cut_link(n, endpoint, "", on);
    sn_fake_net_cut_link(n, "", endpoint, on);
}

void sn_fake_net_queue(sn_fake_net *n, size_t cap)
{
    n->cap = cap;
}

size_t sn_fake_net_connects(sn_fake_net *n, const char *endpoint)
{
    for (opened *o = n->opened; o; o = o->next) {
        if (strcmp(o->endpoint, endpoint) == 0)
            return o->count;
    }
    return 0;
}

size_t sn_fake_net_open_from(sn_fake_net *n, const char *endpoint)
{
    size_t open = 0;
    for (sn_conn *c = n->conns; c; c = c->all)
        open += !c->closing && strcmp(c->owner->endpoint, endpoint) == 0;
    return open;
}
