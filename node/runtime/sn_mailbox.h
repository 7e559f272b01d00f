/* sn_mailbox: an actor's bounded FIFO of messages, and whether the actor is scheduled.
 * Many threads push, without a lock; one worker at a time pops (the one running the actor),
 * taking all that was pushed in one step. Bounded in messages and in bytes; the bytes also
 * count toward the actor's memory cap. */
#ifndef SN_MAILBOX_H
#define SN_MAILBOX_H

#include "sn_msg.h"

#include <stddef.h>

typedef struct sn_mailbox sn_mailbox;

/* sn_mailbox_new: an empty, idle mailbox holding at most cap messages and cap_bytes bytes
 * of them (sn_msg.size), both counted over the messages pushed without force. NULL on
 * ENOMEM. */
sn_mailbox *sn_mailbox_new(size_t cap, size_t cap_bytes);
/* sn_mailbox_govern: the queued bytes count toward memory_cap with *heap (the bytes the
 * actor's VM holds, read at each push): a push that would take heap + queued bytes past
 * memory_cap is refused. memory_cap 0: no such bound. Before the first push. */
void sn_mailbox_govern(sn_mailbox *mb, _Atomic size_t *heap, size_t memory_cap);
/* sn_mailbox_destroy: frees the mailbox and every message still in it; NULL is fine. */
void sn_mailbox_destroy(sn_mailbox **mbp);

/* sn_mailbox_push: appends m (consumed on SN_OK). SN_EFULL when force is 0 and the mailbox
 * holds cap messages, or m would take it past cap_bytes or past the memory cap (the caller
 * still owns m). A forced message (a start, a timer, a reply) is always queued and takes
 * no one's place: it counts toward neither bound. *wake is set to 1 when the mailbox was
 * idle: the caller must then schedule the actor. *warn is set to the queue length when it
 * reaches the overload threshold (1024, then each doubling), else 0. Any thread. */
int sn_mailbox_push(sn_mailbox *mb, sn_msg *m, int force, int *wake, size_t *warn);

/* sn_mailbox_full: after an SN_EFULL push: 1 with how many pushes were refused and which
 * bound refused the latest (with its numbers) in why, at most once every 10 s, so that the
 * caller logs a flood of refusals as one line; else 0. Any thread. */
int sn_mailbox_full(sn_mailbox *mb, char *why, size_t len);

/* sn_mailbox_pop: the oldest message (caller owns it), or NULL when empty. Only the worker
 * running the actor calls it. */
sn_msg *sn_mailbox_pop(sn_mailbox *mb);

/* sn_mailbox_yield: after a batch: 1 when messages remain (the caller reschedules the actor),
 * else marks the mailbox idle and returns 0. */
int sn_mailbox_yield(sn_mailbox *mb);

/* sn_mailbox_length: messages queued now, and (if peak is not NULL) the most ever queued.
 * Any thread. */
size_t sn_mailbox_length(sn_mailbox *mb, size_t *peak);
/* sn_mailbox_bytes: bytes queued now (forced messages included). Any thread. */
size_t sn_mailbox_bytes(sn_mailbox *mb);

#endif
