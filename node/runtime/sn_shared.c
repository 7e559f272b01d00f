/* sn_shared: a chained hash map of variables; each value is an immutable, reference-counted
 * blob, swapped under a short lock, so readers never wait for a decode. */
#include "sn_shared.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { BUCKETS = 1024 };

struct sn_blob {
    atomic_int refs;
    size_t len;
    char data[];
};

struct sn_shared_var {
    sn_shared_var *next; /* bucket chain */
    pthread_mutex_t update; /* recursive: held by __ around read-modify-publish */
    pthread_mutex_t value;  /* short: guards blob and version together */
    _Atomic uint64_t version;
    sn_blob *blob;
    char name[];
};

struct sn_shared {
    pthread_mutex_t lock;
    size_t count;
    sn_shared_var *bucket[BUCKETS];
};

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

sn_shared *sn_shared_new(void)
{
    sn_shared *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->lock, NULL);
    return s;
}

void sn_shared_destroy(sn_shared **sp)
{
    if (!sp || !*sp)
        return;
    sn_shared *s = *sp;
    for (int i = 0; i < BUCKETS; i++) {
        sn_shared_var *v = s->bucket[i];
        while (v) {
            sn_shared_var *next = v->next;
            if (v->blob)
                sn_blob_release(v->blob);
            pthread_mutex_destroy(&v->update);
            pthread_mutex_destroy(&v->value);
            free(v);
            v = next;
        }
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
    *sp = NULL;
}

sn_shared_var *sn_shared_var_of(sn_shared *s, const char *name, int *err)
{
    uint32_t b = hash_name(name) % BUCKETS;
    pthread_mutex_lock(&s->lock);
    sn_shared_var *v = s->bucket[b];
    while (v && strcmp(v->name, name) != 0)
        v = v->next;
    if (!v) {
        size_t n = strlen(name);
        if (s->count >= SN_SHARED_MAX_NAMES) {
            pthread_mutex_unlock(&s->lock);
            *err = SN_ELIMIT;
            return NULL;
        }
        v = calloc(1, sizeof *v + n + 1);
        if (!v) {
            pthread_mutex_unlock(&s->lock);
            *err = SN_ENOMEM;
            return NULL;
        }
        memcpy(v->name, name, n + 1);
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&v->update, &attr);
        pthread_mutexattr_destroy(&attr);
        pthread_mutex_init(&v->value, NULL);
        v->next = s->bucket[b];
        s->bucket[b] = v;
        s->count++;
    }
    pthread_mutex_unlock(&s->lock);
    *err = SN_OK;
    return v;
}

uint64_t sn_shared_version(sn_shared_var *v)
{
    return atomic_load_explicit(&v->version, memory_order_acquire);
}

sn_blob *sn_shared_read(sn_shared_var *v, uint64_t *version)
{
    pthread_mutex_lock(&v->value);
    sn_blob *b = v->blob;
    if (b)
        atomic_fetch_add(&b->refs, 1);
    *version = atomic_load(&v->version);
    pthread_mutex_unlock(&v->value);
    return b;
}

int sn_shared_publish(sn_shared_var *v, const void *data, size_t len, uint64_t *version)
{
    sn_blob *b = NULL;
    if (len) {
        b = malloc(sizeof *b + len);
        if (!b)
            return SN_ENOMEM;
        atomic_init(&b->refs, 1);
        b->len = len;
        memcpy(b->data, data, len);
    }
    pthread_mutex_lock(&v->value);
    sn_blob *old = v->blob;
    v->blob = b;
    uint64_t now = atomic_fetch_add_explicit(&v->version, 1, memory_order_release) + 1;
    pthread_mutex_unlock(&v->value);
    if (version)
        *version = now;
    if (old)
        sn_blob_release(old);
    return SN_OK;
}

void sn_shared_lock(sn_shared_var *v)
{
    pthread_mutex_lock(&v->update);
}

void sn_shared_unlock(sn_shared_var *v)
{
    pthread_mutex_unlock(&v->update);
}

const char *sn_blob_data(const sn_blob *b)
{
    return b->data;
}

size_t sn_blob_len(const sn_blob *b)
{
    return b->len;
}

void sn_blob_release(sn_blob *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}
