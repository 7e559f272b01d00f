/* sn_fcache: a chained hash over a FIFO of entries; eviction drops the oldest. */
#include "sn_fcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { BUCKETS = 4096 };

typedef struct entry {
    struct entry *next_hash, *next_age;
    unsigned char hash[16];
    size_t len;
    char code[];
} entry;

struct sn_fcache {
    pthread_mutex_t mu;
    entry *bucket[BUCKETS];
    entry *oldest, *newest;
    size_t count, bytes;
    _Atomic uint64_t hits, misses;
};

static size_t bucket_of(const unsigned char hash[16])
{
    size_t b;
    memcpy(&b, hash, sizeof b);
    return b % BUCKETS;
}

sn_fcache *sn_fcache_new(void)
{
    sn_fcache *f = calloc(1, sizeof *f);
    if (f)
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
    pthread_mutex_destroy(&f->mu);
    free(f);
    *fp = NULL;
}

static entry **find(sn_fcache *f, const unsigned char hash[16])
{
    entry **p = &f->bucket[bucket_of(hash)];
    while (*p && memcmp((*p)->hash, hash, 16) != 0)
        p = &(*p)->next_hash;
    return p;
}

static void evict_oldest(sn_fcache *f)
{
    entry *e = f->oldest;
    f->oldest = e->next_age;
    if (!f->oldest)
        f->newest = NULL;
    entry **p = find(f, e->hash);
    if (*p == e)
        *p = e->next_hash;
    f->count--;
    f->bytes -= e->len;
    free(e);
}

void sn_fcache_store(sn_fcache *f, const unsigned char hash[16], const char *code, size_t len)
{
    if (len > SN_FCACHE_BYTES)
        return;
    pthread_mutex_lock(&f->mu);
    if (*find(f, hash)) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    entry *e = malloc(sizeof *e + len);
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
        entry **p = find(f, hash);
        e->next_hash = *p;
        *p = e;
        f->count++;
        f->bytes += len;
    }
    pthread_mutex_unlock(&f->mu);
}

char *sn_fcache_lookup(sn_fcache *f, const unsigned char hash[16], size_t *len)
{
    pthread_mutex_lock(&f->mu);
    entry *e = *find(f, hash);
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
