/* sn_locks: a list of held locks (few at a time in practice), each with a FIFO of waiters. */
#include "sn_locks.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lock {
    struct lock *next;
    uint64_t holder; /* 0: free */
    char holder_node[128];
    double until;    /* lease end */
    sn_lock_req *head, *tail;
    size_t waiting;
    char name[];
} lock;

struct sn_locks {
    pthread_mutex_t mu;
    double lease;
    lock *locks;
};

sn_locks *sn_locks_new(double lease)
{
    sn_locks *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->lease = lease;
    return l;
}

void sn_lock_req_destroy(sn_lock_req **rp)
{
    if (!rp || !*rp)
        return;
    free(*rp);
    *rp = NULL;
}

void sn_locks_destroy(sn_locks **lp)
{
    if (!lp || !*lp)
        return;
    sn_locks *l = *lp;
    while (l->locks) {
        lock *k = l->locks;
        l->locks = k->next;
        while (k->head) {
            sn_lock_req *r = k->head;
            k->head = r->next;
            sn_lock_req_destroy(&r);
        }
        free(k);
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
    *lp = NULL;
}

static lock **find(sn_locks *l, const char *name)
{
    lock **p = &l->locks;
    while (*p && strcmp((*p)->name, name) != 0)
        p = &(*p)->next;
    return p;
}

/* Grants k to its first waiter (lock held): returns the request to deliver, or NULL, and
 * frees k when nobody wants it. */
static sn_lock_req *grant_next(lock **p, double now, double lease)
{
    lock *k = *p;
    sn_lock_req *r = k->head;
    if (!r) {
        *p = k->next;
        free(k);
        return NULL;
    }
    k->head = r->next;
    if (!k->head)
        k->tail = NULL;
    k->waiting--;
    r->next = NULL;
    k->holder = r->actor;
    memcpy(k->holder_node, r->node, sizeof k->holder_node);
    k->until = now + lease;
    return r;
}

static int holds(const lock *k, const char *node, uint64_t actor)
{
    return k->holder == actor && strcmp(k->holder_node, node) == 0;
}

int sn_locks_acquire(sn_locks *l, const char *name, const char *node, uint64_t actor,
                     const char *cb, const void *data, size_t len, double now,
                     sn_lock_req **grant)
{
    *grant = NULL;
    size_t cl = strlen(cb);
    sn_lock_req *r = malloc(sizeof *r + cl + 1 + len);
    if (!r)
        return SN_ENOMEM;
    r->next = NULL;
    r->actor = actor;
    snprintf(r->node, sizeof r->node, "%s", node);
    r->cb = (char *)(r + 1);
    memcpy(r->cb, cb, cl + 1);
    r->data = r->cb + cl + 1;
    if (len)
        memcpy(r->data, data, len);
    r->len = len;
    pthread_mutex_lock(&l->mu);
    lock **p = find(l, name);
    if (!*p) {
        size_t nl = strlen(name);
        lock *k = calloc(1, sizeof *k + nl + 1);
        if (!k) {
            pthread_mutex_unlock(&l->mu);
            free(r);
            return SN_ENOMEM;
        }
        memcpy(k->name, name, nl + 1);
        *p = k;
    }
    lock *k = *p;
    if (k->waiting >= SN_LOCKS_MAX_WAITERS) {
        pthread_mutex_unlock(&l->mu);
        free(r);
        return SN_EFULL;
    }
    if (k->tail)
        k->tail->next = r;
    else
        k->head = r;
    k->tail = r;
    k->waiting++;
    if (k->holder == 0)
        *grant = grant_next(p, now, l->lease);
    pthread_mutex_unlock(&l->mu);
    return SN_OK;
}

int sn_locks_extend(sn_locks *l, const char *name, const char *node, uint64_t actor, double ms,
                    double now)
{
    pthread_mutex_lock(&l->mu);
    lock *k = *find(l, name);
    int rc = SN_ENOENT;
    if (k && holds(k, node, actor)) {
        k->until = now + ms / 1000.0;
        rc = SN_OK;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int sn_locks_release(sn_locks *l, const char *name, const char *node, uint64_t actor,
                     double now, sn_lock_req **grant)
{
    *grant = NULL;
    pthread_mutex_lock(&l->mu);
    lock **p = find(l, name);
    int rc = SN_ENOENT;
    if (*p && holds(*p, node, actor)) {
        (*p)->holder = 0;
        *grant = grant_next(p, now, l->lease);
        rc = SN_OK;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

double sn_locks_expire(sn_locks *l, double now, void (*deliver)(sn_lock_req *g, void *ud),
                       void *ud)
{
    sn_lock_req *out = NULL, **tail = &out;
    double next = 0;
    pthread_mutex_lock(&l->mu);
    lock **p = &l->locks;
    while (*p) {
        lock *k = *p;
        if (k->holder && k->until <= now) {
            k->holder = 0;
            sn_lock_req *g = grant_next(p, now, l->lease);
            if (g) {
                *tail = g;
                tail = &g->next;
            }
            if (*p != k) /* freed: p already points at the next lock */
                continue;
        }
        if (k->holder && (next == 0 || k->until < next))
            next = k->until;
        p = &k->next;
    }
    pthread_mutex_unlock(&l->mu);
    while (out) { /* deliver outside the lock */
        sn_lock_req *g = out;
        out = g->next;
        g->next = NULL;
        deliver(g, ud);
    }
    return next;
}
