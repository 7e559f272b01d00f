/* sn_msg: one message between actors (and from threads to their actor): a kind, who sent
 * it, which handler it is for, and a snapshot payload. One allocation holds it all. */
#ifndef SN_MSG_H
#define SN_MSG_H

#include "sn_buf.h"

#include <stddef.h>
#include <stdint.h>

typedef enum sn_msg_kind {
    SN_MSG_START = 1,  /* run the actor's script (payload: the file path) */
    SN_MSG_SIGNAL,     /* stage.signal: call the handler `name` */
    SN_MSG_THREAD,     /* thread.signal: values for the handle's callback */
    SN_MSG_THREAD_END, /* a thread.new function returned (or failed): last values */
    SN_MSG_HANDLER,    /* a handler registered from a worker thread, moving in */
    SN_MSG_TIMER,      /* the timer `handle` of stage.addtask fired */
    SN_MSG_START_FN,   /* run a function as the actor's top level (payload: fn, args...) */
    SN_MSG_BROKER      /* a socket's event from the broker (node/broker/sn_broker.h) */
} sn_msg_kind;

enum {
    SN_MSG_F_UNTRUSTED = 1, /* from a peer whose bytecode must not be loaded */
    SN_MSG_F_FORCED = 2,    /* the mailbox's own mark: queued past its bounds (sn_mailbox) */
    SN_MSG_F_ANSWER = 4     /* a reply or an automatic answer: never answered automatically */
};

typedef struct sn_msg {
    struct sn_msg *next; /* owned by whichever queue holds the message */
    sn_msg_kind kind;
    uint64_t src;        /* sending actor id, 0 when none */
    uint64_t handle;     /* thread handle for SN_MSG_THREAD*, else 0 */
    const char *name;    /* handler id (points into the block), "" when none */
    const char *reply;   /* reply handler id (at the sender), or NULL: no reply wanted */
    const char *src_stage; /* the sender's stage id, "" when none */
    const char *src_node;  /* the sender's node, "" when it is this node */
    uint64_t src_inc;      /* the sender node's incarnation (remote senders) */
    uint64_t session;      /* remote request: the session its reply must carry */
    unsigned flags;        /* SN_MSG_F_* */
    double deadline;       /* sn_clock_mono() seconds past which it is dropped unhandled;
                              0: none. Set by the sender on this node; not on the wire */
    const char *data;    /* snapshot bytes (points into the block) */
    size_t len;
    size_t size;         /* bytes of the whole block: what a mailbox counts */
} sn_msg;

/* sn_msg_new: a message copying name, reply, src_stage (each may be NULL) and data[0..len).
 * NULL on out of memory. Caller owns it until a queue consumes it. */
sn_msg *sn_msg_new(sn_msg_kind kind, const char *name, const char *reply, const char *src_stage,
                   const void *data, size_t len);
/* sn_msg_new_from: the same, from a sender on another node (src_node, its incarnation, and
 * the session its reply must carry). */
sn_msg *sn_msg_new_from(sn_msg_kind kind, const char *name, const char *reply,
                        const char *src_stage, const char *src_node, uint64_t src_inc,
                        uint64_t session, const void *data, size_t len);
/* sn_msg_head: the bytes a message's block holds before its payload, for sn_msg_adopt. */
size_t sn_msg_head(const char *name, const char *reply, const char *src_stage);
/* sn_msg_adopt: the message whose block is b's bytes: the caller reserved the first head
 * bytes (head = sn_msg_head(name, reply, src_stage)) and wrote the payload after them; the
 * header and the strings are written there. Takes b's memory (b is left empty), so the
 * payload is not copied again. Never fails. */
sn_msg *sn_msg_adopt(sn_buf *b, size_t head, sn_msg_kind kind, const char *name,
                     const char *reply, const char *src_stage);
/* sn_msg_destroy: frees *mp (NULL is fine) and nulls it. */
void sn_msg_destroy(sn_msg **mp);

#endif
