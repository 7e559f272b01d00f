/* sn_rank: a ranking board: string keys, each with an integer score in up to four tiers;
 * each tier is its own order (higher score first, ties by key bytes ascending) kept in a
 * skip list with spans, so set, remove, rank of a key and the entry at a rank are O(log n).
 * Not thread-safe: its owner (one actor) guards it. */
#ifndef SN_RANK_H
#define SN_RANK_H

#include <stddef.h>
#include <stdint.h>

#define SN_RANK_TIERS 4

typedef struct sn_rank sn_rank;

/* sn_rank_new: an empty board holding at most max_keys keys (0: no limit). NULL on out of
 * memory. */
sn_rank *sn_rank_new(size_t max_keys);

/* sn_rank_destroy: frees the board and its keys; NULL is fine; nulls *rp. */
void sn_rank_destroy(sn_rank **rp);

/* sn_rank_touch: makes key (NUL-terminated) present with no score if it is absent. SN_OK,
 * SN_ELIMIT (max_keys reached; nothing changed), SN_ENOMEM. */
int sn_rank_touch(sn_rank *r, const char *key);

/* sn_rank_set: key's score in tier (0..SN_RANK_TIERS-1) becomes score, adding the key when
 * absent; *rank (may be NULL) gets its 1-based rank in that tier. SN_OK, SN_EINVAL (tier out
 * of range), SN_ELIMIT (a new key past max_keys; nothing changed), SN_ENOMEM (nothing
 * changed). */
int sn_rank_set(sn_rank *r, unsigned tier, const char *key, int64_t score, size_t *rank);

/* sn_rank_unset: key keeps no score in tier (the key stays). SN_OK, SN_ENOENT (no key or no
 * score there), SN_EINVAL. */
int sn_rank_unset(sn_rank *r, unsigned tier, const char *key);

/* sn_rank_remove: removes key and all its scores. SN_OK or SN_ENOENT. */
int sn_rank_remove(sn_rank *r, const char *key);

/* sn_rank_has: 1 when key is present (with or without scores), else 0. */
int sn_rank_has(const sn_rank *r, const char *key);

/* sn_rank_get: key's score in tier and its 1-based rank there (either pointer may be NULL).
 * SN_OK, SN_ENOENT (no key, or no score in tier), SN_EINVAL. */
int sn_rank_get(const sn_rank *r, unsigned tier, const char *key, int64_t *score,
                size_t *rank);

/* sn_rank_count: keys with a score in tier (0 for a bad tier). sn_rank_keys: all keys. */
size_t sn_rank_count(const sn_rank *r, unsigned tier);
size_t sn_rank_keys(const sn_rank *r);

/* sn_rank_lower: the rank of the first entry of tier whose score is <= score (the order is
 * descending), or count+1 when every score is higher. */
size_t sn_rank_lower(const sn_rank *r, unsigned tier, int64_t score);

/* One entry seen by sn_rank_walk: key is the board's (valid until that key changes). A
 * non-zero return stops the walk. */
typedef int (*sn_rank_visit)(void *ud, size_t rank, const char *key, int64_t score);

/* sn_rank_walk: visits up to count entries of tier in order from rank from (1-based);
 * returns how many it visited (0 when from is past the end). One O(log n) seek, then O(1)
 * per entry. */
size_t sn_rank_walk(const sn_rank *r, unsigned tier, size_t from, size_t count,
                    sn_rank_visit fn, void *ud);

#endif
