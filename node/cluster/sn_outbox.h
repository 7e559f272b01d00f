/* sn_outbox: frames other threads queue for other nodes, sent by the loop thread in order per
 * peer (a peer whose queue is full keeps its frames, in order, for the next flush; others go
 * on), and the per-pair sequence numbers that let a receiver drop duplicates and count gaps.
 * Queueing is thread-safe (its own mutex, never held across network I/O). */
#ifndef SN_OUTBOX_H
#define SN_OUTBOX_H

#include "sn_members.h"
#include "sn_router.h"

#include <stddef.h>
#include <stdint.h>

typedef enum sn_out_kind { SN_OUT_MESSAGE, SN_OUT_REPLY, SN_OUT_LOCK, SN_OUT_CODE_MISS } sn_out_kind;

/* One queued frame; encoded on the loop thread, where the sequence numbers are. */
typedef struct sn_out {
    struct sn_out *next;
    sn_out_kind kind;
    char node[SN_ROUTER_NODE_MAX];
    int mode;         /* MESSAGE: the wire mode; LOCK: the frame kind */
    uint64_t actor;   /* MESSAGE: the sender; REPLY, LOCK: the requester */
    uint64_t from;    /* REPLY: the actor that answered */
    uint64_t session, dst_inc;
    uint64_t request; /* LOCK: the requester's id for the acquire */
    int status;       /* REPLY: sn_wire_status; LOCK_DENY: the code */
    uint32_t ms;
    char *stage, *msg, *reply, *src_stage, *text; /* LOCK: stage is the lock, msg the handler */
    char *payload;
    size_t len;
} sn_out;

/* sn_out_new: a record of kind for node, with a copy of payload[0..len) and of the strings
 * given (each may be NULL). NULL on out of memory. */
sn_out *sn_out_new(sn_out_kind kind, const char *node, const char *stage, const char *msg,
                   const char *reply, const char *src_stage, const char *text,
                   const void *payload, size_t len);
/* sn_out_free: frees o and its strings; NULL is fine. */
void sn_out_free(sn_out *o);

typedef struct sn_outbox sn_outbox;

sn_outbox *sn_outbox_new(void);
/* sn_outbox_destroy: frees what is still queued; NULL is fine; nulls *op. */
void sn_outbox_destroy(sn_outbox **op);

/* sn_outbox_push: queues o (consumed). 1 when the outbox was empty (the caller wakes the loop
 * thread: else a wake-up is on its way already), 0 otherwise. Any thread. */
int sn_outbox_push(sn_outbox *ob, sn_out *o);

/* sn_outbox_empty: 1 when nothing is queued. Any thread. */
int sn_outbox_empty(sn_outbox *ob);

/* sn_outbox_flush: calls send(o, ud) for every queued frame in order. send returns SN_EFULL
 * to keep o (and every later frame for the same node) for the next flush; anything else
 * frees o. Loop thread. */
void sn_outbox_flush(sn_outbox *ob, int (*send)(sn_out *o, void *ud), void *ud);

/* sn_outbox_flush_peers: takes every queued frame, groups them per node (in queue order
 * within a node) and calls send(list, ud) once per node with that node's frames linked by
 * next. send returns what it did not send (a tail of list, in order; NULL: all done) and
 * frees what it did; that tail goes back in front of the queue, before what was queued
 * meanwhile. Loop thread. */
void sn_outbox_flush_peers(sn_outbox *ob, sn_out *(*send)(sn_out *list, void *ud), void *ud);

/* sn_outbox_reachable: whether o may go to m now: answers (REPLY, LOCK_GRANT, LOCK_DENY) go
 * to a member believed down too (the request arrived, so its sender may well be alive: a
 * false suspicion), but not to one that left or to another incarnation; anything else goes
 * only to a member not down and not left. */
int sn_outbox_reachable(const sn_member *m, const sn_out *o);
/* sn_outbox_frame: the wire frame of o from self (at self_inc) to m; MESSAGE and REPLY take
 * m's next sequence number (give it back with m->seq_out-- when the send fails). The frame
 * points into o. Loop thread. */
void sn_outbox_frame(sn_out *o, const char *self, uint64_t self_inc, sn_member *m,
                     sn_wire_frame *f);

/* sn_outbox_accept_seq: the receiver's check of a MESSAGE or REPLY from m at incarnation inc
 * with sequence number seq (0: unnumbered, accepted). 1 to deliver (*gap: frames missing
 * before it), 0 for a duplicate (never deliver twice). Loop thread. */
int sn_outbox_accept_seq(sn_member *m, uint64_t inc, uint64_t seq, uint64_t *gap);

#endif
