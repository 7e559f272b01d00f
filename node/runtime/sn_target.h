/* sn_target: the grammar of stage.signal targets (lua-api.md section 3), parsed into a
 * record: [mode][stage_id:]msg[=reply], sid+msg, and the lock forms >N.cb, >>N.cb, <N.*. */
#ifndef SN_TARGET_H
#define SN_TARGET_H

#include <stddef.h>

typedef enum sn_target_mode {
    SN_TARGET_SELF = 1,  /* "msg": the sender itself, asynchronously */
    SN_TARGET_SYNC,      /* ":msg": the sender itself, synchronously */
    SN_TARGET_ONE,       /* "sid:msg": one actor of sid, round-robin, cluster-wide */
    SN_TARGET_ALL,       /* "*sid:msg" / "*msg": every actor of sid (or of the sender's stage) */
    SN_TARGET_LOCAL,     /* "=sid:msg": round-robin on the sender's node only */
    SN_TARGET_REMOTE,    /* "+sid:msg": round-robin on other nodes only */
    SN_TARGET_LOCK,      /* ">NAME.cb": queue for lock NAME; cb gets the grant */
    SN_TARGET_EXTEND,    /* ">>NAME.cb": extend the hold of NAME */
    SN_TARGET_RELEASE    /* "<NAME.*": release NAME */
} sn_target_mode;

enum { SN_TARGET_MAX = 1024 }; /* longest target accepted, in bytes */

/* A parsed target. Strings are NUL-terminated copies inside the record. */
typedef struct sn_target {
    sn_target_mode mode;
    char stage[256]; /* target stage id; "" = the sender's own stage (or none for SELF) */
    char msg[512];   /* message id as delivered (sid+msg: "<sender stage>:msg") */
    char reply[256]; /* reply handler id, "" when no reply is asked */
    char lock[256];  /* lock name for the lock forms */
} sn_target;

/* sn_target_parse: parses s (sender_stage is used for the sid+msg form). SN_OK, or SN_EINVAL
 * with a message in err saying what is wrong, e.g. "empty message id in 'sid:'". */
int sn_target_parse(const char *s, const char *sender_stage, sn_target *t, char *err,
                    size_t errlen);

/* sn_target_next: handler matching is hierarchical: the ids tried for message id msg are
 * prefixes of it, most specific first, each ending at a separator ('.', ':' or '?'):
 * "stage:group.msg.cb", "stage:group.msg.", "stage:group.", "stage:"; "chat?user1",
 * "chat?". Separators before the first ':' (the stage part) do not count, unless a '?'
 * comes after that ':' ("a.b:c?d": "a.b:c?", "a.b:", "a."), as in STAGE's stage/lua.cpp.
 * Given the length of one candidate, returns the length of the next, or 0 after the last.
 * The first candidate is msg itself (strlen(msg)). */
size_t sn_target_next(const char *msg, size_t len);

#endif
