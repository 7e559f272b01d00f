/* sn_router: which actors run each stage id, and which one gets the next message. A local
 * actor is one kind of instance; the cluster adds remote ones, so routing does not care.
 * Thread-safe. */
#ifndef SN_ROUTER_H
#define SN_ROUTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_router sn_router;

/* sn_router_new: an empty router; NULL on out of memory. */
sn_router *sn_router_new(void);
/* sn_router_destroy: frees it; NULL is fine; nulls *rp. */
void sn_router_destroy(sn_router **rp);

/* sn_router_add: actor (id, never 0) now runs stage. SN_OK or SN_ENOMEM. */
int sn_router_add(sn_router *r, const char *stage, uint64_t actor);
/* sn_router_remove: actor no longer runs stage (nothing when it did not). */
void sn_router_remove(sn_router *r, const char *stage, uint64_t actor);

/* sn_router_count: the number of instances of stage (0 when unknown). */
size_t sn_router_count(sn_router *r, const char *stage);
/* sn_router_pick: round-robin: attempt 0 returns the next instance and moves the cursor;
 * attempt k > 0 returns the k-th one after it (to skip a full mailbox). 0 when the stage
 * has no instance or attempt >= count. */
uint64_t sn_router_pick(sn_router *r, const char *stage, size_t attempt);
/* sn_router_all: copies up to cap instances of stage to out; returns how many it copied. */
size_t sn_router_all(sn_router *r, const char *stage, uint64_t *out, size_t cap);

/* sn_router_each: calls fn(stage, count, ud) for every stage with instances (for status
 * views). fn must not call back into the router. */
void sn_router_each(sn_router *r, void (*fn)(const char *stage, size_t count, void *ud),
                    void *ud);

#endif
