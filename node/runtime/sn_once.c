/* sn_once: a chained hash set of strings under one mutex. */
#include "sn_once.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { BUCKETS = 4096 };

typedef struct key {
    struct key *next;
    char s[];
} key;

struct sn_once {
    pthread_mutex_t mu;
    size_t count;
    key *bucket[BUCKETS];
};

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

sn_once *sn_once_new(void)
{
    sn_once *o = calloc(1, sizeof *o);
    if (o)
        pthread_mutex_init(&o->mu, NULL);
    return o;
}

void sn_once_destroy(sn_once **op)
{
    if (!op || !*op)
        return;
    sn_once *o = *op;
    for (int i = 0; i < BUCKETS; i++) {
        key *k = o->bucket[i];
        while (k) {
            key *next = k->next;
            free(k);
            k = next;
        }
    }
    pthread_mutex_destroy(&o->mu);
    free(o);
    *op = NULL;
}

int sn_once_first(sn_once *o, const char *s)
{
    key **p = &o->bucket[hash_key(s) % BUCKETS];
    pthread_mutex_lock(&o->mu);
    for (; *p; p = &(*p)->next) {
        if (strcmp((*p)->s, s) == 0) {
            pthread_mutex_unlock(&o->mu);
            return 0;
        }
    }
    int rc = 1;
    size_t n = strlen(s);
    key *k = o->count < SN_ONCE_MAX_KEYS ? malloc(sizeof *k + n + 1) : NULL;
    if (k) {
        memcpy(k->s, s, n + 1);
        k->next = NULL;
        *p = k;
        o->count++;
    } else {
        rc = o->count < SN_ONCE_MAX_KEYS ? -SN_ENOMEM : -SN_ELIMIT;
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void sn_once_forget(sn_once *o, const char *s)
{
    key **p = &o->bucket[hash_key(s) % BUCKETS];
    pthread_mutex_lock(&o->mu);
    for (; *p; p = &(*p)->next) {
        if (strcmp((*p)->s, s) == 0) {
            key *k = *p;
            *p = k->next;
            free(k);
            o->count--;
            break;
        }
    }
    pthread_mutex_unlock(&o->mu);
}
