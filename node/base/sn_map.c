/* sn_map: linear probing over a power-of-two table of slots. A slot keeps the key's hash (a
 * uint64 key is its own hash), so a probe compares strings only when the hashes agree; the
 * home slot is the top bits of hash * 2^64/phi (Fibonacci hashing), which spreads sequential
 * ids and FNV's weak top bits alike. Removal leaves a tombstone; a rehash (grown, or at the
 * same size when tombstones pile up) clears them. */
#include "sn_map.h"
#include "sn_error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum { MIN_CAP = 16 };

typedef struct slot {
    uint64_t hash; /* SN_MAP_U64: the key itself; SN_MAP_STR: the FNV-1a of str */
    char *str;     /* SN_MAP_STR: the key (owned) */
    void *value;   /* NULL: empty; TOMB: removed */
} slot;

struct sn_map {
    sn_map_kind kind;
    sn_map_alloc_fn alloc;
    void *ud;
    slot *slot;
    size_t cap;     /* 0, or a power of two */
    unsigned shift; /* 64 - log2(cap) */
    size_t count, tombs;
};

static char tomb_mark;
#define TOMB ((void *)&tomb_mark)

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* FNV-1a, 64 bits: the offset basis and one step. */
#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_STEP(h, c) (((h) ^ (unsigned char)(c)) * 0x100000001b3ull)

uint64_t sn_map_hash_more(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = FNV_STEP(h, p[i]);
    return h;
}

uint64_t sn_map_rendezvous(const char *key, const char *node)
{
    uint64_t h = sn_map_hash_more(SN_MAP_HASH_PLACEMENT, key, strlen(key));
    h = sn_map_hash_more(h, "\xff", 1);
    h = sn_map_hash_more(h, node, strlen(node));
    return h ^ (h >> 29);
}

uint64_t sn_map_hash(const void *data, size_t len)
{
    return sn_map_hash_more(FNV_BASIS, data, len);
}

/* sn_map_hash of the string s, in the same pass as its length. */
static uint64_t hash_str(const char *s, size_t *len)
{
    uint64_t h = FNV_BASIS;
    const char *p = s;
    for (; *p; p++)
        h = FNV_STEP(h, *p);
    *len = (size_t)(p - s);
    return h;
}

static size_t home(const sn_map *m, uint64_t h)
{
    return (size_t)((h * 0x9e3779b97f4a7c15ull) >> m->shift);
}

sn_map *sn_map_new_alloc(sn_map_kind kind, sn_map_alloc_fn alloc, void *ud)
{
    assert(alloc && "sn_map_new_alloc: NULL alloc");
    sn_map *m = alloc(ud, NULL, 0, sizeof *m);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->alloc = alloc;
    m->ud = ud;
    return m;
}

sn_map *sn_map_new(sn_map_kind kind)
{
    return sn_map_new_alloc(kind, default_alloc, NULL);
}

static void free_keys(sn_map *m)
{
    if (m->kind != SN_MAP_STR)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slot[i];
        if (s->value && s->value != TOMB)
            m->alloc(m->ud, s->str, strlen(s->str) + 1, 0);
    }
}

void sn_map_destroy(sn_map **mp)
{
    if (!mp || !*mp)
        return;
    sn_map *m = *mp;
    free_keys(m);
    if (m->slot)
        m->alloc(m->ud, m->slot, m->cap * sizeof *m->slot, 0);
    m->alloc(m->ud, m, sizeof *m, 0);
    *mp = NULL;
}

void sn_map_clear(sn_map *m)
{
    free_keys(m);
    if (m->slot)
        memset(m->slot, 0, m->cap * sizeof *m->slot);
    m->count = m->tombs = 0;
}

size_t sn_map_count(const sn_map *m)
{
    return m->count;
}

/* The slot of the uint64 key, or NULL. */
static slot *find_u64(const sn_map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = home(m, key);; i = (i + 1) & mask) {
        slot *s = &m->slot[i];
        if (s->hash == key && s->value && s->value != TOMB)
            return s;
        if (!s->value)
            return NULL;
    }
}

/* The slot of the string key (hash h), or NULL. */
static slot *find_str(const sn_map *m, uint64_t h, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = home(m, h);; i = (i + 1) & mask) {
        slot *s = &m->slot[i];
        if (!s->value)
            return NULL;
        if (s->hash == h && s->value != TOMB && strcmp(s->str, key) == 0)
            return s;
    }
}

static unsigned log2_of(size_t cap)
{
    unsigned n = 0;
    while ((size_t)1 << n < cap)
        n++;
    return n;
}

/* Moves every live entry into a table of cap slots. SN_OK or SN_ENOMEM (map unchanged). */
static int rehash(sn_map *m, size_t cap)
{
    slot *t = m->alloc(m->ud, NULL, 0, cap * sizeof *t);
    if (!t)
        return SN_ENOMEM;
    memset(t, 0, cap * sizeof *t);
    slot *old = m->slot;
    size_t oldcap = m->cap;
    m->slot = t;
    m->cap = cap;
    m->shift = 64 - log2_of(cap);
    m->tombs = 0;
    for (size_t i = 0; i < oldcap; i++) {
        slot *s = &old[i];
        if (!s->value || s->value == TOMB)
            continue;
        size_t j = home(m, s->hash);
        while (t[j].value)
            j = (j + 1) & (cap - 1);
        t[j] = *s;
    }
    if (old)
        m->alloc(m->ud, old, oldcap * sizeof *old, 0);
    return SN_OK;
}

/* Room for one more entry: the table stays at most 3/4 full, tombstones included. */
static int reserve_one(sn_map *m)
{
    if ((m->count + m->tombs + 1) * 4 <= m->cap * 3)
        return SN_OK;
    size_t cap = m->cap ? m->cap : MIN_CAP;
    while ((m->count + 1) * 2 > cap) /* after a rehash, at most half full */
        cap *= 2;
    return rehash(m, cap);
}

/* The new key's slot, after reserve_one: the first empty slot of its probe. */
static slot *free_slot(sn_map *m, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = home(m, h);
    while (m->slot[i].value && m->slot[i].value != TOMB)
        i = (i + 1) & mask;
    if (m->slot[i].value == TOMB)
        m->tombs--;
    return &m->slot[i];
}

static void *take(sn_map *m, slot *s)
{
    void *v = s->value;
    if (m->kind == SN_MAP_STR)
        m->alloc(m->ud, s->str, strlen(s->str) + 1, 0);
    s->value = TOMB;
    m->count--;
    m->tombs++;
    if (m->count == 0) { /* all gone: start clean, so probes stay short */
        memset(m->slot, 0, m->cap * sizeof *m->slot);
        m->tombs = 0;
    }
    return v;
}

void *sn_map_get(const sn_map *m, uint64_t key)
{
    assert(m->kind == SN_MAP_U64 && "sn_map_get: not a uint64 map");
    slot *s = find_u64(m, key);
    return s ? s->value : NULL;
}

int sn_map_put(sn_map *m, uint64_t key, void *value)
{
    assert(m->kind == SN_MAP_U64 && value && "sn_map_put: not a uint64 map, or NULL value");
    slot *s = find_u64(m, key);
    if (s) {
        s->value = value;
        return SN_OK;
    }
    if (reserve_one(m) != SN_OK)
        return SN_ENOMEM;
    s = free_slot(m, key);
    s->hash = key;
    s->str = NULL;
    s->value = value;
    m->count++;
    return SN_OK;
}

void *sn_map_del(sn_map *m, uint64_t key)
{
    assert(m->kind == SN_MAP_U64 && "sn_map_del: not a uint64 map");
    slot *s = find_u64(m, key);
    return s ? take(m, s) : NULL;
}

void *sn_map_sget(const sn_map *m, const char *key)
{
    assert(m->kind == SN_MAP_STR && key && "sn_map_sget: not a string map, or NULL key");
    size_t len;
    uint64_t h = hash_str(key, &len);
    slot *s = find_str(m, h, key);
    return s ? s->value : NULL;
}

int sn_map_sput(sn_map *m, const char *key, void *value)
{
    assert(m->kind == SN_MAP_STR && key && value &&
           "sn_map_sput: not a string map, or NULL key or value");
    size_t len;
    uint64_t h = hash_str(key, &len);
    slot *s = find_str(m, h, key);
    if (s) {
        s->value = value;
        return SN_OK;
    }
    char *copy = m->alloc(m->ud, NULL, 0, len + 1);
    if (!copy)
        return SN_ENOMEM;
    if (reserve_one(m) != SN_OK) {
        m->alloc(m->ud, copy, len + 1, 0);
        return SN_ENOMEM;
    }
    memcpy(copy, key, len + 1);
    s = free_slot(m, h);
    s->hash = h;
    s->str = copy;
    s->value = value;
    m->count++;
    return SN_OK;
}

void *sn_map_sdel(sn_map *m, const char *key)
{
    assert(m->kind == SN_MAP_STR && key && "sn_map_sdel: not a string map, or NULL key");
    size_t len;
    uint64_t h = hash_str(key, &len);
    slot *s = find_str(m, h, key);
    return s ? take(m, s) : NULL;
}

int sn_map_next(const sn_map *m, size_t *pos, sn_map_item *out)
{
    for (size_t i = *pos; i < m->cap; i++) {
        const slot *s = &m->slot[i];
        if (!s->value || s->value == TOMB)
            continue;
        out->key_u64 = m->kind == SN_MAP_U64 ? s->hash : 0;
        out->key_str = s->str;
        out->value = s->value;
        *pos = i + 1;
        return 1;
    }
    *pos = m->cap;
    return 0;
}
