/* sn_router: a chained hash of stages; each holds a growable array of actor ids and a
 * round-robin cursor. */
#include "sn_router.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { BUCKETS = 1024 };

typedef struct stage {
    struct stage *next;
    uint64_t *ids;
    size_t n, cap;
    size_t cursor; /* the next instance of the round */
    size_t last;   /* the instance attempt 0 returned */
    char name[];
} stage;

struct sn_router {
    pthread_mutex_t lock;
    stage *bucket[BUCKETS];
};

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

sn_router *sn_router_new(void)
{
    sn_router *r = calloc(1, sizeof *r);
    if (r)
        pthread_mutex_init(&r->lock, NULL);
    return r;
}

void sn_router_destroy(sn_router **rp)
{
    if (!rp || !*rp)
        return;
    sn_router *r = *rp;
    for (int i = 0; i < BUCKETS; i++) {
        stage *s = r->bucket[i];
        while (s) {
            stage *next = s->next;
            free(s->ids);
            free(s);
            s = next;
        }
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
    *rp = NULL;
}

/* The stage called name, or NULL; creates it when create. Lock held. */
static stage *find(sn_router *r, const char *name, int create)
{
    stage **p = &r->bucket[hash_name(name) % BUCKETS];
    for (; *p; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0)
            return *p;
    }
    if (!create)
        return NULL;
    size_t n = strlen(name);
    stage *s = calloc(1, sizeof *s + n + 1);
    if (!s)
        return NULL;
    memcpy(s->name, name, n + 1);
    *p = s;
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
    for (int i = 0; i < BUCKETS; i++) {
        for (stage *s = r->bucket[i]; s; s = s->next) {
            if (s->n)
                fn(s->name, s->n, ud);
        }
    }
    pthread_mutex_unlock(&r->lock);
}
