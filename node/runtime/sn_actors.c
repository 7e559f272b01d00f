/* sn_actors: an sn_map of actor pointers keyed by id, under one mutex. */
#include "sn_actors.h"
#include "sn_error.h"
#include "sn_map.h"

#include <pthread.h>
#include <stdlib.h>

struct sn_actors {
    pthread_mutex_t lock;
    sn_map *byid; /* id -> sn_actor *, holding the table's reference */
};

sn_actors *sn_actors_new(void)
{
    sn_actors *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->byid = sn_map_new(SN_MAP_U64);
    if (!t->byid) {
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
    size_t pos = 0;
    sn_map_item it;
    while (sn_map_next(t->byid, &pos, &it)) {
        sn_actor *a = it.value;
        sn_actor_release(&a);
    }
    sn_map_destroy(&t->byid);
    pthread_mutex_destroy(&t->lock);
    free(t);
    *tp = NULL;
}

int sn_actors_add(sn_actors *t, sn_actor *a)
{
    pthread_mutex_lock(&t->lock);
    int rc = sn_map_put(t->byid, sn_actor_id(a), a);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

sn_actor *sn_actors_grab(sn_actors *t, uint64_t id)
{
    pthread_mutex_lock(&t->lock);
    sn_actor *a = sn_map_get(t->byid, id);
    if (a)
        sn_actor_grab(a);
    pthread_mutex_unlock(&t->lock);
    return a;
}

void sn_actors_remove(sn_actors *t, uint64_t id)
{
    pthread_mutex_lock(&t->lock);
    sn_actor *a = sn_map_del(t->byid, id);
    pthread_mutex_unlock(&t->lock);
    sn_actor_release(&a);
}

size_t sn_actors_count(sn_actors *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = sn_map_count(t->byid);
    pthread_mutex_unlock(&t->lock);
    return n;
}

void sn_actors_each(sn_actors *t, void (*fn)(sn_actor *a, void *ud), void *ud)
{
    pthread_mutex_lock(&t->lock);
    size_t pos = 0;
    sn_map_item it;
    while (sn_map_next(t->byid, &pos, &it))
        fn(it.value, ud);
    pthread_mutex_unlock(&t->lock);
}
