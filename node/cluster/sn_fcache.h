/* sn_fcache: the node's content-addressed store of function bytecode received from other
 * nodes, so that a peer may send a function it sent before as its hash alone. Bounded;
 * thread-safe. */
#ifndef SN_FCACHE_H
#define SN_FCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_fcache sn_fcache;

enum { SN_FCACHE_ENTRIES = 8192 };     /* bytecodes kept, the oldest evicted first */
#define SN_FCACHE_BYTES (64u << 20)     /* and at most this many bytes of them */

/* sn_fcache_new / sn_fcache_destroy: an empty store; destroy takes NULL and nulls *fp. */
sn_fcache *sn_fcache_new(void);
void sn_fcache_destroy(sn_fcache **fp);

/* sn_fcache_store: keeps code (copied) under hash; nothing when already held or on ENOMEM. */
void sn_fcache_store(sn_fcache *f, const unsigned char hash[16], const char *code, size_t len);
/* sn_fcache_lookup: a malloc'd copy of the bytecode of hash (caller frees), or NULL. Counts a
 * hit or a miss. */
char *sn_fcache_lookup(sn_fcache *f, const unsigned char hash[16], size_t *len);
/* sn_fcache_counts: hits and misses of sn_fcache_lookup so far. */
void sn_fcache_counts(sn_fcache *f, uint64_t *hits, uint64_t *misses);

#endif
