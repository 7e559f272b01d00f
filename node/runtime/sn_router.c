/* sn_router: an sn_map of stages by name; each holds a growable array of actor ids and a
 * round-robin cursor. */
#include "sn_router.h"
#include "sn_error.h"
#include "sn_map.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct remote {
    char node[SN_ROUTER_NODE_MAX];
    uint32_t count;
} remote;

typedef struct stage {
    remote *remote; /* other nodes running this stage */
    size_t nremote, capremote;
    uint64_t *ids;
    size_t n, cap;
    size_t cursor; /* the next instance of the round */
    size_t last;   /* the instance attempt 0 returned */
} stage;

struct sn_router {
    pthread_mutex_t lock;
    sn_map *stages; /* name -> stage * (owned) */
};

sn_router *sn_router_new(void)
{
    sn_router *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->stages = sn_map_new(SN_MAP_STR);
    if (!r->stages) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void sn_router_destroy(sn_router **rp)
{
    if (!rp || !*rp)
        return;
    sn_router *r = *rp;
    size_t pos = 0;
    sn_map_item it;
    while (sn_map_next(r->stages, &pos, &it)) {
        stage *s = it.value;
        free(s->ids);
        free(s->remote);
        free(s);
    }
    sn_map_destroy(&r->stages);
    pthread_mutex_destroy(&r->lock);
    free(r);
    *rp = NULL;
}

/* The stage called name, or NULL; creates it when create. Lock held. */
static stage *find(sn_router *r, const char *name, int create)
{
    stage *s = sn_map_sget(r->stages, name);
    if (s || !create)
        return s;
    s = calloc(1, sizeof *s);
    if (s && sn_map_sput(r->stages, name, s) != SN_OK) {
        free(s);
        s = NULL;
    }
    return s;
}

int sn_router_add(sn_router *r, const char *name, uint64_t actor)
{
    pthread_mutex_lock(&r->lock);
    stage *s = find(r, name, 1);
    if (s && s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        uint64_t *ids = realloc(s->ids, cap * sizeof *ids);
        if (ids) {
            s->ids = ids;
            s->cap = cap;
        }
    }
    int rc = SN_ENOMEM;
    if (s && s->n < s->cap) {
        s->ids[s->n++] = actor;
        rc = SN_OK;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void sn_router_remove(sn_router *r, const char *name, uint64_t actor)
{
    pthread_mutex_lock(&r->lock);
    stage *s = find(r, name, 0);
    for (size_t i = 0; s && i < s->n; i++) {
        if (s->ids[i] == actor) { /* keep the order: round-robin stays fair */
            memmove(&s->ids[i], &s->ids[i + 1], (s->n - i - 1) * sizeof *s->ids);
            s->n--;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
}

size_t sn_router_count(sn_router *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    stage *s = find(r, name, 0);
    size_t n = s ? s->n : 0;
    pthread_mutex_unlock(&r->lock);
    return n;
}

uint64_t sn_router_pick(sn_router *r, const char *name, size_t attempt)
{
    pthread_mutex_lock(&r->lock);
    stage *s = find(r, name, 0);
    uint64_t id = 0;
    if (s && s->n && attempt < s->n) {
        if (attempt == 0) {
            s->last = s->cursor % s->n;
            s->cursor = s->last + 1;
        }
        id = s->ids[(s->last + attempt) % s->n];
    }
    pthread_mutex_unlock(&r->lock);
    return id;
}

size_t sn_router_all(sn_router *r, const char *name, uint64_t *out, size_t cap)
{
    pthread_mutex_lock(&r->lock);
    stage *s = find(r, name, 0);
    size_t n = s ? (s->n < cap ? s->n : cap) : 0;
    if (n)
        memcpy(out, s->ids, n * sizeof *out);
    pthread_mutex_unlock(&r->lock);
    return n;
}

void sn_router_each(sn_router *r, void (*fn)(const char *stage, size_t count, void *ud), void *ud)
{
    pthread_mutex_lock(&r->lock);
    size_t pos = 0;
    sn_map_item it;
    while (sn_map_next(r->stages, &pos, &it)) {
        const stage *s = it.value;
        if (s->n)
            fn(it.key_str, s->n, ud);
    }
    pthread_mutex_unlock(&r->lock);
}

/* set_remote without the lock (the caller holds it). */
static int set_remote_locked(sn_router *r, const char *node, const char *name, uint32_t count)
{
    stage *s = find(r, name, count > 0);
    if (!s)
        return count == 0 ? SN_OK : SN_ENOMEM;
    for (size_t i = 0; i < s->nremote; i++) {
        if (strcmp(s->remote[i].node, node) == 0) {
            if (count)
                s->remote[i].count = count;
            else
                s->remote[i] = s->remote[--s->nremote];
            return SN_OK;
        }
    }
    if (!count)
        return SN_OK;
    if (s->nremote == s->capremote) {
        size_t cap = s->capremote ? s->capremote * 2 : 4;
        remote *v = realloc(s->remote, cap * sizeof *v);
        if (!v)
            return SN_ENOMEM;
        s->remote = v;
        s->capremote = cap;
    }
    snprintf(s->remote[s->nremote].node, SN_ROUTER_NODE_MAX, "%s", node);
    s->remote[s->nremote++].count = count;
    return SN_OK;
}

static void drop_node_locked(sn_router *r, const char *node)
{
    size_t pos = 0;
    sn_map_item it;
    while (sn_map_next(r->stages, &pos, &it)) {
        stage *s = it.value;
        for (size_t i = 0; i < s->nremote; i++) {
            if (strcmp(s->remote[i].node, node) == 0) {
                s->remote[i] = s->remote[--s->nremote];
                break;
            }
        }
    }
}

int sn_router_set_remote(sn_router *r, const char *node, const char *name, uint32_t count)
{
    pthread_mutex_lock(&r->lock);
    int rc = set_remote_locked(r, node, name, count);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void sn_router_drop_node(sn_router *r, const char *node)
{
    pthread_mutex_lock(&r->lock);
    drop_node_locked(r, node);
    pthread_mutex_unlock(&r->lock);
}

int sn_router_set_node(sn_router *r, const char *node, const sn_router_stage *v, size_t n)
{
    pthread_mutex_lock(&r->lock);
    drop_node_locked(r, node);
    int rc = SN_OK;
    for (size_t i = 0; i < n; i++)
        if (set_remote_locked(r, node, v[i].stage, v[i].count) != SN_OK)
            rc = SN_ENOMEM;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int sn_router_route(sn_router *r, const char *name, sn_router_scope scope, size_t attempt,
                    sn_route *out)
{
    pthread_mutex_lock(&r->lock);
    stage *s = find(r, name, 0);
    size_t local = s && scope != SN_SCOPE_REMOTE ? s->n : 0, remote_total = 0;
    for (size_t i = 0; s && scope != SN_SCOPE_LOCAL && i < s->nremote; i++)
        remote_total += s->remote[i].count;
    size_t total = local + remote_total;
    int found = 0;
    if (total && attempt < total) {
        if (attempt == 0) {
            s->last = s->cursor % total;
            s->cursor = s->last + 1;
        }
        size_t k = (s->last + attempt) % total;
        if (k < local) {
            out->actor = s->ids[k];
            out->node[0] = '\0';
        } else {
            k -= local;
            size_t i = 0;
            while (k >= s->remote[i].count)
                k -= s->remote[i++].count;
            out->actor = 0;
            memcpy(out->node, s->remote[i].node, SN_ROUTER_NODE_MAX);
        }
        found = 1;
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

size_t sn_router_nodes(sn_router *r, const char *name, char (*out)[SN_ROUTER_NODE_MAX],
                       uint32_t *counts, size_t cap)
{
    pthread_mutex_lock(&r->lock);
    stage *s = find(r, name, 0);
    size_t n = 0;
    for (size_t i = 0; s && i < s->nremote && n < cap; i++) {
        if (counts)
            counts[n] = s->remote[i].count;
        memcpy(out[n++], s->remote[i].node, SN_ROUTER_NODE_MAX);
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}
