/* sn_shared: an sn_map of variables by name; each value is an immutable, reference-counted
 * blob, swapped under a short lock, so readers never wait for a decode. */
#include "sn_shared.h"
#include "sn_error.h"
#include "sn_map.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct sn_blob {
    atomic_int refs;
    size_t len;
    char data[];
};

struct sn_shared_var {
    pthread_mutex_t update; /* recursive: held by __ around read-modify-publish */
    pthread_mutex_t value;  /* short: guards blob and version together */
    _Atomic uint64_t version;
    sn_blob *blob;
};

struct sn_shared {
    pthread_mutex_t lock;
    sn_map *vars; /* name -> sn_shared_var * (owned) */
};

sn_shared *sn_shared_new(void)
{
    sn_shared *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->vars = sn_map_new(SN_MAP_STR);
    if (!s->vars) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void sn_shared_destroy(sn_shared **sp)
{
    if (!sp || !*sp)
        return;
    sn_shared *s = *sp;
    size_t pos = 0;
    sn_map_item it;
    while (sn_map_next(s->vars, &pos, &it)) {
        sn_shared_var *v = it.value;
        if (v->blob)
            sn_blob_release(v->blob);
        pthread_mutex_destroy(&v->update);
        pthread_mutex_destroy(&v->value);
        free(v);
    }
    sn_map_destroy(&s->vars);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *sp = NULL;
}

sn_shared_var *sn_shared_var_of(sn_shared *s, const char *name, int *err)
{
    pthread_mutex_lock(&s->lock);
    sn_shared_var *v = sn_map_sget(s->vars, name);
    if (!v) {
        if (sn_map_count(s->vars) >= SN_SHARED_MAX_NAMES) {
            pthread_mutex_unlock(&s->lock);
            *err = SN_ELIMIT;
            return NULL;
        }
        v = calloc(1, sizeof *v);
        if (!v || sn_map_sput(s->vars, name, v) != SN_OK) {
            pthread_mutex_unlock(&s->lock);
            free(v);
            *err = SN_ENOMEM;
            return NULL;
        }
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&v->update, &attr);
        pthread_mutexattr_destroy(&attr);
        pthread_mutex_init(&v->value, NULL);
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
