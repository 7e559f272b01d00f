/* sn_actors: an open hash of actor pointers keyed by id, grown by doubling. */
#include "sn_actors.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdlib.h>

struct sn_actors {
    pthread_mutex_t lock;
    sn_actor **slot; /* linear probing; NULL = empty; ids are never 0 */
    size_t cap, count, tombs;
};

static sn_actor *const TOMB = (sn_actor *)&TOMB;

sn_actors *sn_actors_new(void)
{
    sn_actors *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = 64;
    t->slot = calloc(t->cap, sizeof *t->slot);
    if (!t->slot) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void sn_actors_destroy(sn_actors **tp)
{
    if (!tp || !*tp)
        return;
    sn_actors *t = *tp;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slot[i] && t->slot[i] != TOMB)
            sn_actor_release(&t->slot[i]);
    }
    pthread_mutex_destroy(&t->lock);
    free(t->slot);
    free(t);
    *tp = NULL;
}

static size_t home(const sn_actors *t, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (t->cap - 1);
}

static int grow(sn_actors *t)
{
    size_t cap = t->cap * 2;
    sn_actor **slot = calloc(cap, sizeof *slot);
    if (!slot)
        return SN_ENOMEM;
    sn_actor **old = t->slot;
    size_t oldcap = t->cap;
    t->slot = slot;
    t->cap = cap;
    t->tombs = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i] || old[i] == TOMB)
            continue;
        size_t j = home(t, sn_actor_id(old[i]));
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = old[i];
    }
    free(old);
    return SN_OK;
}

int sn_actors_add(sn_actors *t, sn_actor *a)
{
    pthread_mutex_lock(&t->lock);
    if ((t->count + t->tombs + 1) * 2 > t->cap && grow(t) != SN_OK) {
        pthread_mutex_unlock(&t->lock);
        return SN_ENOMEM;
    }
    size_t j = home(t, sn_actor_id(a));
    while (t->slot[j] && t->slot[j] != TOMB)
        j = (j + 1) & (t->cap - 1);
    if (t->slot[j] == TOMB)
        t->tombs--;
    t->slot[j] = a;
    t->count++;
    pthread_mutex_unlock(&t->lock);
    return SN_OK;
}

/* The slot index of id, or cap when absent. Lock held. */
static size_t lookup(sn_actors *t, uint64_t id)
{
    size_t j = home(t, id);
    while (t->slot[j]) {
        if (t->slot[j] != TOMB && sn_actor_id(t->slot[j]) == id)
            return j;
        j = (j + 1) & (t->cap - 1);
    }
    return t->cap;
}

sn_actor *sn_actors_grab(sn_actors *t, uint64_t id)
{
    pthread_mutex_lock(&t->lock);
    size_t j = lookup(t, id);
    sn_actor *a = j < t->cap ? t->slot[j] : NULL;
    if (a)
        sn_actor_grab(a);
    pthread_mutex_unlock(&t->lock);
    return a;
}

void sn_actors_remove(sn_actors *t, uint64_t id)
{
    pthread_mutex_lock(&t->lock);
    size_t j = lookup(t, id);
    sn_actor *a = NULL;
    if (j < t->cap) {
        a = t->slot[j];
        t->slot[j] = TOMB;
        t->count--;
        t->tombs++;
    }
    pthread_mutex_unlock(&t->lock);
    sn_actor_release(&a);
}

size_t sn_actors_count(sn_actors *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void sn_actors_each(sn_actors *t, void (*fn)(sn_actor *a, void *ud), void *ud)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slot[i] && t->slot[i] != TOMB)
            fn(t->slot[i], ud);
    }
    pthread_mutex_unlock(&t->lock);
}
