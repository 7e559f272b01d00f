/* sn_codecache: per peer, a direct-mapped set of hashes (slot = hash bits 64..127 mod slots). */
#include "sn_codecache.h"
#include "sn_router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct peer_set {
    struct peer_set *next;
    char node[SN_ROUTER_NODE_MAX];
    unsigned char known[SN_CODECACHE_SLOTS][16];
    unsigned char used[SN_CODECACHE_SLOTS];
} peer_set;

struct sn_codecache {
    pthread_mutex_t mu;
    peer_set *peers;
};

sn_codecache *sn_codecache_new(void)
{
    sn_codecache *cc = calloc(1, sizeof *cc);
    if (cc)
        pthread_mutex_init(&cc->mu, NULL);
    return cc;
}

void sn_codecache_destroy(sn_codecache **cp)
{
    if (!cp || !*cp)
        return;
    sn_codecache *cc = *cp;
    while (cc->peers) {
        peer_set *p = cc->peers;
        cc->peers = p->next;
        free(p);
    }
    pthread_mutex_destroy(&cc->mu);
    free(cc);
    *cp = NULL;
}

static size_t slot(const unsigned char hash[16])
{
    size_t k;
    memcpy(&k, hash + 8, sizeof k);
    return k % SN_CODECACHE_SLOTS;
}

static peer_set *find(sn_codecache *cc, const char *node)
{
    for (peer_set *p = cc->peers; p; p = p->next) {
        if (strcmp(p->node, node) == 0)
            return p;
    }
    return NULL;
}

int sn_codecache_knows(sn_codecache *cc, const char *node, const unsigned char hash[16])
{
    size_t k = slot(hash);
    pthread_mutex_lock(&cc->mu);
    peer_set *p = find(cc, node);
    int yes = p && p->used[k] && memcmp(p->known[k], hash, 16) == 0;
    pthread_mutex_unlock(&cc->mu);
    return yes;
}

void sn_codecache_sent(sn_codecache *cc, const char *node, const unsigned char hash[16])
{
    size_t k = slot(hash);
    pthread_mutex_lock(&cc->mu);
    peer_set *p = find(cc, node);
    if (!p && (p = calloc(1, sizeof *p))) {
        snprintf(p->node, sizeof p->node, "%s", node);
        p->next = cc->peers;
        cc->peers = p;
    }
    if (p) {
        memcpy(p->known[k], hash, 16);
        p->used[k] = 1;
    }
    pthread_mutex_unlock(&cc->mu);
}

void sn_codecache_lost(sn_codecache *cc, const unsigned char hash[16])
{
    size_t k = slot(hash);
    pthread_mutex_lock(&cc->mu);
    for (peer_set *p = cc->peers; p; p = p->next) { /* CODE_MISS does not say which peer */
        if (p->used[k] && memcmp(p->known[k], hash, 16) == 0)
            p->used[k] = 0;
    }
    pthread_mutex_unlock(&cc->mu);
}

void sn_codecache_forget(sn_codecache *cc, const char *node)
{
    pthread_mutex_lock(&cc->mu);
    for (peer_set **pp = &cc->peers; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->node, node) == 0) {
            peer_set *p = *pp;
            *pp = p->next;
            free(p);
            break;
        }
    }
    pthread_mutex_unlock(&cc->mu);
}
