/* sn_fcache: an sn_map (keyed by the hash in hex) over a FIFO of entries; eviction drops the
 * oldest. */
#include "sn_fcache.h"
#include "sn_error.h"
#include "sn_map.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *next_age;
    unsigned char hash[16];
    size_t len;
    char code[];
} entry;

struct sn_fcache {
    pthread_mutex_t mu;
    sn_map *byhash; /* hex of the hash -> entry */
    entry *oldest, *newest;
    size_t count, bytes;
    _Atomic uint64_t hits, misses;
};

enum { KEY_LEN = 33 }; /* 32 hex digits and a NUL */

static void key_of(const unsigned char hash[16], char key[KEY_LEN])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        key[2 * i] = hex[hash[i] >> 4];
        key[2 * i + 1] = hex[hash[i] & 15];
    }
    key[32] = '\0';
}

sn_fcache *sn_fcache_new(void)
{
    sn_fcache *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->byhash = sn_map_new(SN_MAP_STR);
    if (!f->byhash) {
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void sn_fcache_destroy(sn_fcache **fp)
{
    if (!fp || !*fp)
        return;
    sn_fcache *f = *fp;
    while (f->oldest) {
        entry *e = f->oldest;
        f->oldest = e->next_age;
        free(e);
    }
    sn_map_destroy(&f->byhash);
    pthread_mutex_destroy(&f->mu);
    free(f);
    *fp = NULL;
}

static void evict_oldest(sn_fcache *f)
{
    entry *e = f->oldest;
    f->oldest = e->next_age;
    if (!f->oldest)
        f->newest = NULL;
    char key[KEY_LEN];
    key_of(e->hash, key);
    sn_map_sdel(f->byhash, key);
    f->count--;
    f->bytes -= e->len;
    free(e);
}

void sn_fcache_store(sn_fcache *f, const unsigned char hash[16], const char *code, size_t len)
{
    if (len > SN_FCACHE_BYTES)
        return;
    char key[KEY_LEN];
    key_of(hash, key);
    pthread_mutex_lock(&f->mu);
    if (sn_map_sget(f->byhash, key)) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    entry *e = malloc(sizeof *e + len);
    if (e && sn_map_sput(f->byhash, key, e) != SN_OK) {
        free(e);
        e = NULL;
    }
    if (e) {
        while (f->oldest && (f->count >= SN_FCACHE_ENTRIES || f->bytes + len > SN_FCACHE_BYTES))
            evict_oldest(f);
        memcpy(e->hash, hash, 16);
        e->len = len;
        memcpy(e->code, code, len);
        e->next_age = NULL;
        if (f->newest)
            f->newest->next_age = e;
        else
            f->oldest = e;
        f->newest = e;
        f->count++;
        f->bytes += len;
    }
    pthread_mutex_unlock(&f->mu);
}

char *sn_fcache_lookup(sn_fcache *f, const unsigned char hash[16], size_t *len)
{
    char key[KEY_LEN];
    key_of(hash, key);
    pthread_mutex_lock(&f->mu);
    entry *e = sn_map_sget(f->byhash, key);
    char *copy = e ? malloc(e->len ? e->len : 1) : NULL;
    if (copy) {
        memcpy(copy, e->code, e->len);
        *len = e->len;
    }
    pthread_mutex_unlock(&f->mu);
    atomic_fetch_add(copy ? &f->hits : &f->misses, 1);
    return copy;
}

void sn_fcache_counts(sn_fcache *f, uint64_t *hits, uint64_t *misses)
{
    *hits = atomic_load(&f->hits);
    *misses = atomic_load(&f->misses);
}
