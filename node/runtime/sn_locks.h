/* sn_locks: ordered named locks (stage.signal(">NAME.cb")): one holder at a time, waiters
 * granted in arrival order, and a lease after which an unreleased grant expires.
 * Thread-safe; time is passed in by the caller (monotonic seconds). */
#ifndef SN_LOCKS_H
#define SN_LOCKS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_locks sn_locks;

/* What a lock request asks (stage.signal ">NAME.cb", ">>NAME.cb", "<NAME.*"). */
typedef enum sn_lock_op { SN_LOCK_ACQUIRE, SN_LOCK_EXTEND, SN_LOCK_RELEASE } sn_lock_op;

/* A request for a lock, and later its grant: deliver `data` to handler `cb` of `actor` on
 * `node` ("" for this node). */
typedef struct sn_lock_req {
    struct sn_lock_req *next;
    uint64_t actor;
    char node[128];
    char *cb;   /* handler id, inside the same block */
    char *data; /* snapshot of the values, inside the same block */
    size_t len;
} sn_lock_req;

enum { SN_LOCKS_MAX_WAITERS = 65536 }; /* per lock */

/* sn_locks_new: lease is how long a grant lasts unless extended (reliability: 0.1 s). */
sn_locks *sn_locks_new(double lease);
/* sn_locks_destroy: frees every lock and waiting request; NULL is fine; nulls *lp. */
void sn_locks_destroy(sn_locks **lp);

/* sn_lock_req_destroy: frees a request handed out as a grant. */
void sn_lock_req_destroy(sn_lock_req **rp);

/* sn_locks_acquire: queues (node, actor, cb, data) for lock name. When the lock was free it is
 * granted at once: *grant is the request to deliver (caller owns it). SN_OK, SN_ENOMEM, or
 * SN_EFULL (too many waiters). */
int sn_locks_acquire(sn_locks *l, const char *name, const char *node, uint64_t actor,
                     const char *cb, const void *data, size_t len, double now,
                     sn_lock_req **grant);
/* sn_locks_extend: the holder's lease now ends ms after now. SN_ENOENT when actor does not
 * hold name. */
int sn_locks_extend(sn_locks *l, const char *name, const char *node, uint64_t actor, double ms,
                    double now);
/* sn_locks_release: actor lets go of name; the next waiter (if any) is granted: *grant.
 * SN_ENOENT when actor does not hold it. */
int sn_locks_release(sn_locks *l, const char *name, const char *node, uint64_t actor,
                     double now, sn_lock_req **grant);
/* sn_locks_expire: ends every lease that ended by now and grants the next waiters, calling
 * deliver(grant, ud) for each (deliver takes ownership). Returns the next lease end, or 0
 * when no lock is held. */
double sn_locks_expire(sn_locks *l, double now, void (*deliver)(sn_lock_req *g, void *ud),
                       void *ud);

#endif
