/* sn_rank: one skip list with spans per tier (the span of a link counts the entries it
 * skips, so a walk from the head sums to a rank), and one map from key to its entry. */
#include "sn_rank.h"
#include "sn_error.h"
#include "sn_map.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 32

typedef struct rnode rnode;
typedef struct entry {
    char *key;
    size_t klen;
    rnode *node[SN_RANK_TIERS]; /* NULL: no score in that tier */
} entry;

struct rnode {
    entry *e;
    int64_t score;
    int level;
    struct {
        rnode *next;
        size_t span;
    } lv[];
};

typedef struct list {
    rnode *head;
    int level;
    size_t length;
} list;

struct sn_rank {
    sn_map *keys; /* key -> entry */
    list tiers[SN_RANK_TIERS];
    size_t max_keys;
    uint64_t rng;
};

static rnode *node_new(int level, entry *e, int64_t score)
{
    rnode *x = calloc(1, sizeof *x + (size_t)level * sizeof x->lv[0]);
    if (x) {
        x->e = e;
        x->score = score;
        x->level = level;
    }
    return x;
}

/* 1 when (score, key of e) comes before x in the order: higher score, then smaller key. */
static int before(int64_t score, const entry *e, const rnode *x)
{
    if (score != x->score)
        return score > x->score;
    size_t n = e->klen < x->e->klen ? e->klen : x->e->klen;
    int c = memcmp(e->key, x->e->key, n);
    return c ? c < 0 : e->klen < x->e->klen;
}

static int random_level(sn_rank *r)
{
    int level = 1;
    for (;;) { /* xorshift64; p = 1/4 per level */
        r->rng ^= r->rng << 13;
        r->rng ^= r->rng >> 7;
        r->rng ^= r->rng << 17;
        if ((r->rng & 3) || level >= MAX_LEVEL)
            return level;
        level++;
    }
}

sn_rank *sn_rank_new(size_t max_keys)
{
    sn_rank *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->keys = sn_map_new(SN_MAP_STR);
    r->max_keys = max_keys;
    r->rng = 0x9E3779B97F4A7C15ull;
    int ok = r->keys != NULL;
    for (int t = 0; ok && t < SN_RANK_TIERS; t++) {
        r->tiers[t].head = node_new(MAX_LEVEL, NULL, 0);
        r->tiers[t].level = 1;
        ok = r->tiers[t].head != NULL;
    }
    if (!ok)
        sn_rank_destroy(&r);
    return r;
}

void sn_rank_destroy(sn_rank **rp)
{
    if (!rp || !*rp)
        return;
    sn_rank *r = *rp;
    for (int t = 0; t < SN_RANK_TIERS; t++) {
        rnode *x = r->tiers[t].head;
        while (x) {
            rnode *next = x->lv[0].next;
            free(x);
            x = next;
        }
    }
    if (r->keys) {
        size_t pos = 0;
        sn_map_item it;
        while (sn_map_next(r->keys, &pos, &it)) {
            entry *e = it.value;
            free(e->key);
            free(e);
        }
        sn_map_destroy(&r->keys);
    }
    free(r);
    *rp = NULL;
}

/* Inserts (score, e) into l; returns the node (NULL: out of memory) and its rank. */
static rnode *list_insert(sn_rank *r, list *l, entry *e, int64_t score, size_t *rank_out)
{
    rnode *update[MAX_LEVEL];
    size_t rank[MAX_LEVEL];
    rnode *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        rank[i] = i == l->level - 1 ? 0 : rank[i + 1];
        while (x->lv[i].next && !before(score, e, x->lv[i].next)) {
            rank[i] += x->lv[i].span;
            x = x->lv[i].next;
        }
        update[i] = x;
    }
    int level = random_level(r);
    rnode *n = node_new(level, e, score);
    if (!n)
        return NULL;
    if (level > l->level) {
        for (int i = l->level; i < level; i++) {
            rank[i] = 0;
            update[i] = l->head;
            update[i]->lv[i].span = l->length;
        }
        l->level = level;
    }
    for (int i = 0; i < level; i++) {
        n->lv[i].next = update[i]->lv[i].next;
        update[i]->lv[i].next = n;
        n->lv[i].span = update[i]->lv[i].span - (rank[0] - rank[i]);
        update[i]->lv[i].span = (rank[0] - rank[i]) + 1;
    }
    for (int i = level; i < l->level; i++)
        update[i]->lv[i].span++;
    l->length++;
    if (rank_out)
        *rank_out = rank[0] + 1;
    return n;
}

/* Unlinks and frees node n of l. */
static void list_delete(list *l, rnode *n)
{
    rnode *update[MAX_LEVEL];
    rnode *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->lv[i].next && x->lv[i].next != n && before(x->lv[i].next->score,
                                                             x->lv[i].next->e, n))
            x = x->lv[i].next;
        update[i] = x;
    }
    for (int i = 0; i < l->level; i++) {
        if (update[i]->lv[i].next == n) {
            update[i]->lv[i].span += n->lv[i].span - 1;
            update[i]->lv[i].next = n->lv[i].next;
        } else {
            update[i]->lv[i].span--;
        }
    }
    while (l->level > 1 && !l->head->lv[l->level - 1].next)
        l->level--;
    l->length--;
    free(n);
}

/* The 1-based rank of node n in l. */
static size_t list_rank(const list *l, const rnode *n)
{
    size_t rank = 0;
    const rnode *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->lv[i].next && (x->lv[i].next == n ||
                                 before(x->lv[i].next->score, x->lv[i].next->e, n))) {
            rank += x->lv[i].span;
            x = x->lv[i].next;
        }
        if (x == n)
            return rank;
    }
    return rank;
}

/* The node at 1-based rank, or NULL. */
static const rnode *list_at(const list *l, size_t rank)
{
    if (rank == 0 || rank > l->length)
        return NULL;
    size_t seen = 0;
    const rnode *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->lv[i].next && seen + x->lv[i].span <= rank) {
            seen += x->lv[i].span;
            x = x->lv[i].next;
        }
        if (seen == rank)
            return x;
    }
    return NULL;
}

static entry *entry_add(sn_rank *r, const char *key, int *rc)
{
    entry *e = sn_map_sget(r->keys, key);
    if (e)
        return e;
    if (r->max_keys && sn_map_count(r->keys) >= r->max_keys) {
        *rc = SN_ELIMIT;
        return NULL;
    }
    e = calloc(1, sizeof *e);
    if (e) {
        e->klen = strlen(key);
        e->key = malloc(e->klen + 1);
    }
    if (!e || !e->key || sn_map_sput(r->keys, key, e) != SN_OK) {
        if (e)
            free(e->key);
        free(e);
        *rc = SN_ENOMEM;
        return NULL;
    }
    memcpy(e->key, key, e->klen + 1);
    return e;
}

int sn_rank_touch(sn_rank *r, const char *key)
{
    int rc = SN_OK;
    return entry_add(r, key, &rc) ? SN_OK : rc;
}

int sn_rank_set(sn_rank *r, unsigned tier, const char *key, int64_t score, size_t *rank)
{
    if (tier >= SN_RANK_TIERS)
        return SN_EINVAL;
    int rc = SN_OK, fresh = !sn_map_sget(r->keys, key);
    entry *e = entry_add(r, key, &rc);
    if (!e)
        return rc;
    list *l = &r->tiers[tier];
    rnode *old = e->node[tier];
    if (old && old->score == score) {
        if (rank)
            *rank = list_rank(l, old);
        return SN_OK;
    }
    rnode *n = list_insert(r, l, e, score, rank);
    if (!n) {
        if (fresh) {
            sn_map_sdel(r->keys, key);
            free(e->key);
            free(e);
        }
        return SN_ENOMEM;
    }
    if (old) { /* the old place comes out after the new one is in, so a failure changes
                  nothing; the rank counted both, and the old one sorted first or after */
        int old_first = before(old->score, e, n);
        list_delete(l, old);
        if (rank && old_first)
            (*rank)--;
    }
    e->node[tier] = n;
    return SN_OK;
}

int sn_rank_unset(sn_rank *r, unsigned tier, const char *key)
{
    if (tier >= SN_RANK_TIERS)
        return SN_EINVAL;
    entry *e = sn_map_sget(r->keys, key);
    if (!e || !e->node[tier])
        return SN_ENOENT;
    list_delete(&r->tiers[tier], e->node[tier]);
    e->node[tier] = NULL;
    return SN_OK;
}

int sn_rank_remove(sn_rank *r, const char *key)
{
    entry *e = sn_map_sdel(r->keys, key);
    if (!e)
        return SN_ENOENT;
    for (int t = 0; t < SN_RANK_TIERS; t++)
        if (e->node[t])
            list_delete(&r->tiers[t], e->node[t]);
    free(e->key);
    free(e);
    return SN_OK;
}

int sn_rank_has(const sn_rank *r, const char *key)
{
    return sn_map_sget(r->keys, key) != NULL;
}

int sn_rank_get(const sn_rank *r, unsigned tier, const char *key, int64_t *score, size_t *rank)
{
    if (tier >= SN_RANK_TIERS)
        return SN_EINVAL;
    const entry *e = sn_map_sget(r->keys, key);
    if (!e || !e->node[tier])
        return SN_ENOENT;
    if (score)
        *score = e->node[tier]->score;
    if (rank)
        *rank = list_rank(&r->tiers[tier], e->node[tier]);
    return SN_OK;
}

size_t sn_rank_count(const sn_rank *r, unsigned tier)
{
    return tier < SN_RANK_TIERS ? r->tiers[tier].length : 0;
}

size_t sn_rank_keys(const sn_rank *r)
{
    return sn_map_count(r->keys);
}

size_t sn_rank_lower(const sn_rank *r, unsigned tier, int64_t score)
{
    if (tier >= SN_RANK_TIERS)
        return 1;
    const list *l = &r->tiers[tier];
    size_t rank = 0;
    const rnode *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->lv[i].next && x->lv[i].next->score > score) {
            rank += x->lv[i].span;
            x = x->lv[i].next;
        }
    }
    return rank + 1;
}

size_t sn_rank_walk(const sn_rank *r, unsigned tier, size_t from, size_t count,
                    sn_rank_visit fn, void *ud)
{
    if (tier >= SN_RANK_TIERS)
        return 0;
    const rnode *x = list_at(&r->tiers[tier], from);
    size_t n = 0;
    for (; x && n < count; x = x->lv[0].next) {
        n++;
        if (fn(ud, from + n - 1, x->e->key, x->score))
            break;
    }
    return n;
}
