/* sn_send: the one send path. It decides local or remote, broadcast or round-robin, and the
 * failure, for stage.signal and for frames arriving from other nodes alike. */
#ifndef SN_SEND_H
#define SN_SEND_H

#include "sn_buf.h"
#include "sn_msg.h"
#include "sn_node.h"
#include "sn_router.h"

#include <stddef.h>
#include <stdint.h>

/* One send. msg is the template (kind, name, reply, src, src_stage, payload, flags): each
 * local actor gets it or a copy; each remote node gets its name, reply, src and payload. */
typedef struct sn_send {
    const char *stage;     /* the target stage ("" with actor set: the sender itself) */
    uint64_t actor;        /* not 0: only this local actor (stage.signal to self) */
    sn_router_scope scope; /* local, remote or both; a frame from another node: local */
    const char *node;      /* not NULL: that other node only (a built-in stage's home) */
    int broadcast;         /* every instance in scope (a node counts as its actors) */
    sn_msg *msg;           /* consumed by sn_send_route */
    int count_out;         /* count each message queued as sent (SN_COUNT_OUT) */
    const char *src_stage; /* the sender's stage, for counting (NULL: ""); outlives the call */
    const struct sn_stats_stage *src_counts; /* its series (sn_stats.h), if resolved: then
                                                 counting looks up nothing; else NULL */
    /* encode: optional: a payload of its own for a remote node (the function cache sends
     * bytecode a peer holds as a hash). SN_OK with out filled, else the template's payload
     * goes. Called on the sending thread. */
    int (*encode)(void *ud, const char *node, sn_buf *out);
    void *ud;
} sn_send;

/* sn_send_route: queues s->msg as s says, and consumes it (queued, or freed); mailboxes are
 * never forced, a full one is skipped (round-robin tries the next instance). *queued: messages queued (a node reached by a
 * broadcast counts as its actors). SN_OK (*queued > 0), SN_EFULL (a mailbox or a peer queue
 * was full and nothing was queued), SN_ENOENT (no instance in scope took it: no route),
 * SN_EDOWN (s->node is not alive),
 * SN_ECLOSED (the node is stopping), SN_ENOMEM. A failure is counted as a drop of the
 * stage. Any thread. */
int sn_send_route(sn_node *n, const sn_send *s, size_t *queued);

/* sn_send_why: the text stage.signal and replies give for a failure rc of sn_send_route to
 * stage: "mailbox full", "no route to STAGE", "node down" (SN_ECLOSED), else
 * sn_strerror(rc). Returns buf. */
const char *sn_send_why(int rc, const char *stage, char *buf, size_t len);

#endif
