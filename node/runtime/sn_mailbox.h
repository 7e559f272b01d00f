/* sn_mailbox: an actor's bounded FIFO of messages, and whether the actor is scheduled.
 * Many threads push; one worker at a time pops (the one running the actor). */
#ifndef SN_MAILBOX_H
#define SN_MAILBOX_H

#include "sn_msg.h"

#include <stddef.h>

typedef struct sn_mailbox sn_mailbox;

/* sn_mailbox_new: an empty, idle mailbox holding at most cap messages. NULL on ENOMEM. */
sn_mailbox *sn_mailbox_new(size_t cap);
/* sn_mailbox_destroy: frees the mailbox and every message still in it; NULL is fine. */
void sn_mailbox_destroy(sn_mailbox **mbp);

/* sn_mailbox_push: appends m (consumed on SN_OK). SN_EFULL when the mailbox holds cap
 * messages and force is 0 (the caller still owns m). *wake is set to 1 when the mailbox was
 * idle: the caller must then schedule the actor. *warn is set to the queue length when it
 * reaches the overload threshold (1024, then each doubling), else 0. Any thread. */
int sn_mailbox_push(sn_mailbox *mb, sn_msg *m, int force, int *wake, size_t *warn);

/* sn_mailbox_pop: the oldest message (caller owns it), or NULL when empty. Only the worker
 * running the actor calls it. */
sn_msg *sn_mailbox_pop(sn_mailbox *mb);

/* sn_mailbox_yield: after a batch: 1 when messages remain (the caller reschedules the actor),
 * else marks the mailbox idle and returns 0. */
int sn_mailbox_yield(sn_mailbox *mb);

/* sn_mailbox_length: messages queued now, and (if peak is not NULL) the most ever queued.
 * Any thread. */
size_t sn_mailbox_length(sn_mailbox *mb, size_t *peak);

#endif
