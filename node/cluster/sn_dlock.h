/* sn_dlock: cluster-wide ordered locks over the wire (proto/WIRE.md, LOCK_*): which node is a
 * lock's home (rendezvous hashing over the alive members); the requests this node's actors
 * send to remote homes and their end (a grant, a deny, or the home's death); and, at the
 * home, the requests from other nodes, handed to the runtime's sn_locks through the hooks,
 * with a deny when they fail. Thread-safe (its own mutex, never held across network I/O). */
#ifndef SN_DLOCK_H
#define SN_DLOCK_H

#include "sn_cluster_hooks.h"
#include "sn_gate.h"
#include "sn_members.h"
#include "sn_outbox.h"
#include "sn_router.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sn_dlock_req {
    struct sn_dlock_req *next;
    uint64_t request;              /* this node's id for the acquire (WIRE.md: request) */
    char lock[256];
    char home[SN_ROUTER_NODE_MAX];
    uint64_t actor;
    char handler[256];
} sn_dlock_req;

typedef struct sn_dlock sn_dlock;

/* sn_dlock_new: frames go out through ob (waking the loop through h), to members of ms;
 * self_inc is this node's incarnation (answers for another one are stale). */
sn_dlock *sn_dlock_new(const sn_cluster_hooks *h, sn_outbox *ob, sn_members *ms, sn_log *log,
                       uint64_t self_inc);
/* sn_dlock_destroy: NULL is fine; nulls *dp. */
void sn_dlock_destroy(sn_dlock **dp);

/* sn_dlock_home: 1 and the home's name in home when it is an alive member, 0 when it is this
 * node (self). Takes the members' lock: any thread. */
int sn_dlock_home(sn_members *ms, const char *self, const char *lock, char *home, size_t cap);
/* sn_dlock_settled: 1 when a home chosen by sn_dlock_home is the same as the other nodes'
 * and it can be known that no node runs the thing already: this node has met a member (if
 * seeded: it was given nodes to join) and holds the registry of every alive member. Takes
 * the members' lock: any thread. */
int sn_dlock_settled(sn_members *ms, int seeded);

/* sn_dlock_send: queues op of actor for lock at home (an ACQUIRE is recorded, so its end
 * reaches handler). SN_OK or SN_ENOMEM. Any thread. */
int sn_dlock_send(sn_dlock *d, const char *home, sn_lock_op op, const char *lock, uint64_t actor,
                  const char *handler, const void *data, size_t len, double ms);
/* sn_dlock_grant: at the home: queues the grant for actor's handler on node. Any thread. */
void sn_dlock_grant(sn_dlock *d, const char *node, uint64_t actor, const char *handler,
                    const void *data, size_t len);
/* sn_dlock_frame: a LOCK_* frame arrived on a connection authenticated as peer (NULL: not
 * authenticated, so its payload is data only). A request from a non-member, a grant for no
 * request of ours or from another node than its home is refused through g. Loop thread. */
void sn_dlock_frame(sn_dlock *d, const sn_wire_frame *f, const char *peer, sn_gate *g);
/* sn_dlock_home_gone: every acquire waiting at home ends with (nil, why). Loop thread. */
void sn_dlock_home_gone(sn_dlock *d, const char *home, const char *why);

/* sn_dlock_acquiring: records an acquire of lock by actor (handler) sent to home: its request
 * id (never 0), or 0 on out of memory (the acquire still goes; it just cannot be failed
 * early). */
uint64_t sn_dlock_acquiring(sn_dlock *d, const char *lock, const char *home, uint64_t actor,
                            const char *handler);
/* sn_dlock_granted: a grant for (actor, handler) came: 1 with *out (removed), 0 when no
 * acquire of it is outstanding. */
int sn_dlock_granted(sn_dlock *d, uint64_t actor, const char *handler, const char *home,
                     sn_dlock_req *out);
/* sn_dlock_denied: the home refused request: 1 with *out (removed), 0 when unknown. home
 * non-NULL: only a request made to that home. */
int sn_dlock_denied(sn_dlock *d, uint64_t request, const char *home, sn_dlock_req *out);
/* sn_dlock_take_home: removes every acquire waiting at home (it died or left): a list the
 * caller frees with sn_dlock_free_list. */
sn_dlock_req *sn_dlock_take_home(sn_dlock *d, const char *home);
void sn_dlock_free_list(sn_dlock_req *list);

#endif
