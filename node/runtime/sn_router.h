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

/* ---- remote instances (the cluster's registry) ---- */

enum { SN_ROUTER_NODE_MAX = 128 }; /* longest node name, with its NUL */

/* Where a message goes: a local actor (actor != 0), or a node (actor == 0, node set). */
typedef struct sn_route {
    uint64_t actor;
    char node[SN_ROUTER_NODE_MAX];
} sn_route;

typedef enum sn_router_scope { SN_SCOPE_ALL = 0, SN_SCOPE_LOCAL, SN_SCOPE_REMOTE } sn_router_scope;

/* sn_router_set_remote: node runs count actors of stage (0 removes). SN_OK or SN_ENOMEM. */
int sn_router_set_remote(sn_router *r, const char *node, const char *stage, uint32_t count);
/* sn_router_drop_node: forgets every instance of node (it is down, or left). */
void sn_router_drop_node(sn_router *r, const char *node);
/* sn_router_set_node: node now runs exactly the n stages of v (its registry), in one step
 * under the router's lock: a send never sees the node's stages half replaced (dropped, then
 * added one by one, a stage the node kept had no route for a moment). SN_OK, or SN_ENOMEM
 * (some stages are then missing). */
typedef struct sn_router_stage {
    const char *stage;
    uint32_t count;
} sn_router_stage;
int sn_router_set_node(sn_router *r, const char *node, const sn_router_stage *v, size_t n);
/* sn_router_route: round-robin over the instances of stage in scope (a node with N actors
 * counts N times), like sn_router_pick. 1 with *out filled, 0 when there is none. */
int sn_router_route(sn_router *r, const char *stage, sn_router_scope scope, size_t attempt,
                    sn_route *out);
/* sn_router_nodes: copies up to cap names of nodes running stage to out (and, if counts is
 * not NULL, how many actors each runs); returns how many nodes. */
size_t sn_router_nodes(sn_router *r, const char *stage, char (*out)[SN_ROUTER_NODE_MAX],
                       uint32_t *counts, size_t cap);

/* sn_router_each: calls fn(stage, count, ud) for every stage with local instances (for status
 * views). fn must not call back into the router. */
void sn_router_each(sn_router *r, void (*fn)(const char *stage, size_t count, void *ud),
                    void *ud);

#endif
