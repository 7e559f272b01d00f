/* sn_map: the one hash map of stage-node: keys (a uint64 or a string, chosen per map) to
 * non-NULL pointers. Open addressing; the one string hash (FNV-1a) lives here. The owner
 * guards a map with its own lock: readers (get, sget, count, next) may run together, a
 * writer (put, del, clear, destroy) runs alone. */
#ifndef SN_MAP_H
#define SN_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_map sn_map;

typedef enum sn_map_kind {
    SN_MAP_U64 = 0, /* keys are uint64 values (any value, 0 included) */
    SN_MAP_STR      /* keys are NUL-terminated strings, copied into the map */
} sn_map_kind;

/* The allocation hook, shaped like lua_Alloc: nsize 0 frees ptr (returns NULL); otherwise
 * (re)allocates ptr from osize to nsize bytes, NULL on failure (ptr untouched). Tests
 * inject out-of-memory through it. */
typedef void *(*sn_map_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* One entry, as iteration sees it: key_u64 for SN_MAP_U64 maps, key_str for SN_MAP_STR ones
 * (owned by the map: valid until the entry is removed or the map destroyed). */
typedef struct sn_map_item {
    uint64_t key_u64;
    const char *key_str;
    void *value;
} sn_map_item;

/* sn_map_new: an empty map of kind, allocating with malloc. NULL on out of memory. An empty
 * map allocates no table until its first put. */
sn_map *sn_map_new(sn_map_kind kind);
/* sn_map_new_alloc: the same, allocating (the map and all it holds) through alloc/ud. */
sn_map *sn_map_new_alloc(sn_map_kind kind, sn_map_alloc_fn alloc, void *ud);
/* sn_map_destroy: frees the map and its key copies, not the values; NULL is fine; nulls *mp. */
void sn_map_destroy(sn_map **mp);

/* ---- SN_MAP_U64 maps (asserts the kind) ---- */

/* sn_map_get: the value of key, or NULL when absent. */
void *sn_map_get(const sn_map *m, uint64_t key);
/* sn_map_put: sets key to value (not NULL), replacing any old value. SN_OK, or SN_ENOMEM
 * (the map is unchanged). */
int sn_map_put(sn_map *m, uint64_t key, void *value);
/* sn_map_del: removes key; its value (caller owns it again), or NULL when absent. */
void *sn_map_del(sn_map *m, uint64_t key);

/* ---- SN_MAP_STR maps (asserts the kind) ---- */

/* sn_map_sget: the value of key, or NULL when absent. */
void *sn_map_sget(const sn_map *m, const char *key);
/* sn_map_sput: sets key (copied) to value (not NULL), replacing any old value. SN_OK, or
 * SN_ENOMEM (the map is unchanged). */
int sn_map_sput(sn_map *m, const char *key, void *value);
/* sn_map_sdel: removes key; its value (caller owns it again), or NULL when absent. */
void *sn_map_sdel(sn_map *m, const char *key);

/* ---- both kinds ---- */

/* sn_map_count: the number of entries. */
size_t sn_map_count(const sn_map *m);
/* sn_map_next: iteration. Start with *pos = 0; each call fills *out with the next entry and
 * returns 1, or returns 0 at the end. Order is unspecified. While iterating, the caller may
 * change values and remove the entry just returned, but not add entries. */
int sn_map_next(const sn_map *m, size_t *pos, sn_map_item *out);
/* sn_map_clear: removes every entry (values are not freed); keeps the table. */
void sn_map_clear(sn_map *m);

/* sn_map_hash: the FNV-1a 64-bit hash of len bytes: the one string hash of the node. */
uint64_t sn_map_hash(const void *data, size_t len);
/* SN_MAP_HASH_PLACEMENT: the start value, for sn_map_hash_more, of the hashes that nodes must
 * agree on (the homes of built-in stages and locks, the members digest) and of stage.submit's
 * string keys: FNV-1a's offset basis with its last digit dropped, as these hashes always
 * started, so that nodes of every build agree. */
#define SN_MAP_HASH_PLACEMENT 1469598103934665603ull
/* sn_map_hash_more: h (an sn_map_hash) continued over len more bytes: sn_map_hash_more(
 * sn_map_hash(a, n), b, m) is sn_map_hash of a's n bytes followed by b's m, with no copy. */
uint64_t sn_map_hash_more(uint64_t h, const void *data, size_t len);
/* sn_map_rendezvous: the rank of node for key in rendezvous (highest random weight) hashing,
 * from SN_MAP_HASH_PLACEMENT over key, a 0xff byte and node: every node computes the same
 * homes (built-in stages, distributed locks). */
uint64_t sn_map_rendezvous(const char *key, const char *node);

#endif
