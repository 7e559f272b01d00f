/* sn_codecache: the sender side of the function cache: which bytecode hashes each peer holds
 * because this node sent them in full (to its current incarnation). Thread-safe, with its own
 * mutex that is never held across network I/O, so a worker's snapshot encoder asking
 * sn_codecache_knows never waits behind a send. */
#ifndef SN_CODECACHE_H
#define SN_CODECACHE_H

#include <stddef.h>

enum { SN_CODECACHE_SLOTS = 2048 }; /* hashes remembered per peer; a collision forgets one */

typedef struct sn_codecache sn_codecache;

sn_codecache *sn_codecache_new(void);
/* sn_codecache_destroy: NULL is fine; nulls *cp. */
void sn_codecache_destroy(sn_codecache **cp);

/* sn_codecache_knows: 1 when node holds the bytecode of hash (we sent it), else 0. */
int sn_codecache_knows(sn_codecache *cc, const char *node, const unsigned char hash[16]);
/* sn_codecache_sent: node holds hash from now on (nothing on out of memory: it is only
 * sent in full again). */
void sn_codecache_sent(sn_codecache *cc, const char *node, const unsigned char hash[16]);
/* sn_codecache_lost: some peer lost hash (CODE_MISS): no peer is believed to hold it. */
void sn_codecache_lost(sn_codecache *cc, const unsigned char hash[16]);
/* sn_codecache_forget: node holds nothing (a new incarnation, or forgotten). */
void sn_codecache_forget(sn_codecache *cc, const char *node);

#endif
