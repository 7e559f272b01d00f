/* sn_flush: the loop thread's send of the outbox. Per peer, the data frames queued for it
 * (MESSAGE, REPLY, LOCK) go out in one BATCH of at most batch_max bytes (proto/WIRE.md), a
 * lone frame as itself; a peer whose queue is full keeps its frames, in order and with their
 * sequence numbers given back, for the next flush. Loop thread. */
#ifndef SN_FLUSH_H
#define SN_FLUSH_H

#include "sn_cluster_hooks.h"
#include "sn_link.h"
#include "sn_log.h"
#include "sn_members.h"
#include "sn_outbox.h"
#include "sn_sessions.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sn_flush sn_flush;

/* sn_flush_new: sends as node self (at self_inc; the string is borrowed, like every other
 * argument). batch_max 0: every frame goes alone. NULL on out of memory. */
sn_flush *sn_flush_new(const sn_cluster_hooks *h, sn_link *link, sn_members *ms,
                       sn_sessions *ss, sn_log *log, const char *self, uint64_t self_inc,
                       size_t batch_max);
/* sn_flush_destroy: NULL is fine; nulls *fp. */
void sn_flush_destroy(sn_flush **fp);
/* sn_flush_run: sends what ob holds now. A request that cannot leave (its node is gone)
 * hears (nil, "node down") at once. */
void sn_flush_run(sn_flush *f, sn_outbox *ob);
/* sn_flush_one: o alone to m, at once: SN_EFULL leaves o to the caller with nothing taken;
 * otherwise o is done with (sent, or failed and its requester told) and the caller frees
 * it. The caller holds whatever keeps the loop thread off m and the link. */
int sn_flush_one(sn_flush *f, sn_member *m, sn_out *o);
/* sn_flush_direct: from a thread other than the loop's: sends o (a call or a reply) at once
 * when the loop thread is idle (the link's lock is free), nothing is queued before it, and
 * o's peer has its data connection; then 1, o consumed, and wake(ud) if that send may have
 * taken the loop's notice of a received frame. Else 0: the caller queues o. Saves a request
 * or a reply the hop through the loop thread (its wake-up and a context switch each way). */
int sn_flush_direct(sn_flush *f, sn_outbox *ob, sn_out *o, void (*wake)(void *), void *ud);
/* sn_flush_counts: BATCH frames sent so far, and the times one was cut at batch_max. */
void sn_flush_counts(const sn_flush *f, uint64_t *batches, uint64_t *cuts);

#endif
