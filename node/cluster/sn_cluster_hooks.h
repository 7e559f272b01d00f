/* sn_cluster_hooks: the one way the cluster calls up into the node: a table of callbacks
 * that main fills in (the runtime's functions), and the error answer every part uses. */
#ifndef SN_CLUSTER_HOOKS_H
#define SN_CLUSTER_HOOKS_H

#include "sn_locks.h"
#include "sn_msg.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

/* What the cluster needs from the node. Called on the loop thread unless said otherwise;
 * none may call back into the cluster except the any-thread functions below. */
typedef struct sn_cluster_hooks {
    void *ud;
    /* deliver: a MESSAGE from another node, to the local actors of its stage: an
     * sn_wire_status (SN_WIRE_OK, SN_WIRE_NO_ROUTE, SN_WIRE_MAILBOX_FULL). */
    int (*deliver)(void *ud, const sn_wire_message *m, int trusted);
    /* post: queues m for actor; force ignores the mailbox cap (answers to the actor's own
     * requests). SN_OK (m consumed), SN_ENOENT, SN_EFULL (the caller still owns m). */
    int (*post)(void *ud, uint64_t actor, sn_msg *m, int force);
    /* each_stage: calls fn for every local stage with its actor count. */
    void (*each_stage)(void *ud, void (*fn)(const char *stage, size_t count, void *fud),
                       void *fud);
    /* status_self: this node's status view as JSON (caller frees). SN_OK or an error. */
    int (*status_self)(void *ud, char **json, size_t *len);
    /* lock_at_home: this node is the lock's home; a request from node (sn_locks' codes). */
    int (*lock_at_home)(void *ud, sn_lock_op op, const char *lock, const char *node,
                        uint64_t actor, const char *handler, const void *data, size_t len,
                        double ms);
    /* set_node / drop_node: the router's table of remote instances. set_node: node runs
     * exactly these n stages now (its registry), replaced in one step: a send at that moment
     * finds the old set or the new one, never a stage both hold missing. */
    void (*set_node)(void *ud, const char *node, const sn_wire_stage *stages, size_t n);
    void (*drop_node)(void *ud, const char *node);
    /* wake: makes the loop thread call sn_cluster_flush soon. Any thread. */
    void (*wake)(void *ud);
    /* now: monotonic seconds; NULL: CLOCK_MONOTONIC. Tests drive time through it. */
    double (*now)(void *ud);
} sn_cluster_hooks;

/* sn_cluster_post_error: delivers (nil, why) to handler rid of actor, past its mailbox cap
 * (it answers the actor's own request), as from node `from`. Nothing on out of memory. */
void sn_cluster_post_error(const sn_cluster_hooks *h, uint64_t actor, const char *rid,
                           const char *from, const char *why);

#endif
