/* sn_once: an sn_map of strings under one mutex; the limit's warning is rate-limited. */
#include "sn_once.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_map.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

enum { WARN_EVERY_S = 60 };

struct sn_once {
    pthread_mutex_t mu;
    sn_map *keys; /* key -> &present: a set */
    size_t max_keys;
    sn_log *log;
    double warned_at;  /* sn_clock_mono of the last warning; 0: never */
    uint64_t refused;  /* keys refused by the limit since the last warning */
};

static char present;

sn_once *sn_once_new(size_t max_keys, sn_log *log)
{
    assert(max_keys > 0 && "sn_once_new: max_keys must be positive");
    sn_once *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->keys = sn_map_new(SN_MAP_STR);
    if (!o->keys) {
        free(o);
        return NULL;
    }
    o->max_keys = max_keys;
    o->log = log;
    pthread_mutex_init(&o->mu, NULL);
    return o;
}

void sn_once_destroy(sn_once **op)
{
    if (!op || !*op)
        return;
    sn_once *o = *op;
    sn_map_destroy(&o->keys);
    pthread_mutex_destroy(&o->mu);
    free(o);
    *op = NULL;
}

/* The limit refused a key: warn now if the last warning is old enough. Lock held. */
static void limit_hit(sn_once *o)
{
    o->refused++;
    double now = sn_clock_mono();
    if (!o->log || (o->warned_at != 0 && now - o->warned_at < WARN_EVERY_S))
        return;
    sn_log_write(o->log, SN_LOG_WARN, NULL,
                 "stage.once: the node's key table is full (once_keys=%zu); %llu new key(s) "
                 "refused; raise it with --set once_keys=N, or forget keys with "
                 "stage.once(key, nil)",
                 o->max_keys, (unsigned long long)o->refused);
    o->warned_at = now;
    o->refused = 0;
}

int sn_once_first(sn_once *o, const char *key, int *first)
{
    pthread_mutex_lock(&o->mu);
    int rc = SN_OK;
    if (sn_map_sget(o->keys, key)) {
        *first = 0;
    } else if (sn_map_count(o->keys) >= o->max_keys) {
        limit_hit(o);
        rc = SN_ELIMIT;
    } else if ((rc = sn_map_sput(o->keys, key, &present)) == SN_OK) {
        *first = 1;
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void sn_once_forget(sn_once *o, const char *key)
{
    pthread_mutex_lock(&o->mu);
    sn_map_sdel(o->keys, key);
    pthread_mutex_unlock(&o->mu);
}

size_t sn_once_max_keys(const sn_once *o)
{
    return o->max_keys;
}
