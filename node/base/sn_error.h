/* sn_error: the one error enum of stage-node and its messages.
 * Every fallible function returns one of these; detail goes to the log or a caller's buffer. */
#ifndef SN_ERROR_H
#define SN_ERROR_H

#include <stddef.h>

typedef enum sn_err {
    SN_OK = 0,
    SN_ENOMEM,    /* out of memory */
    SN_EINVAL,    /* bad argument or bad input from a user */
    SN_EPROTO,    /* malformed data from a peer or a buffer */
    SN_ENOENT,    /* no such file, actor or name */
    SN_ELIMIT,    /* a configured limit was hit (depth, size, count) */
    SN_ENOTSUP,   /* not supported, or not available in this build */
    SN_EIO,       /* an OS call failed; errno was logged */
    SN_ELUA,      /* a Lua error; the message was logged or returned */
    SN_EFULL,     /* a bounded queue is full */
    SN_ECLOSED,   /* the object is shutting down */
    SN_ETIMEDOUT, /* a deadline passed */
    SN_EUNTRUSTED, /* code offered by a source that is not trusted */
    SN_ENOROUTE,   /* no actor or node runs the target */
    SN_EDOWN       /* the node the message was for is down */
} sn_err;

/* sn_strerror: a static, human-readable text for err; never NULL. */
const char *sn_strerror(int err);

/* sn_error_text: the failure text a script sees for code (the second value of a failed
 * request, a signal's error reply), built in buf (cap > 0 bytes, truncated to fit) and
 * returned: SN_EFULL "mailbox full", SN_ENOROUTE "no route to SUBJECT" (or "no route"),
 * SN_EDOWN "node down", SN_ETIMEDOUT "timeout"; any other code its sn_strerror text. A
 * subject the text has no place for is appended as "TEXT: SUBJECT". subject may be NULL. */
const char *sn_error_text(int code, const char *subject, char *buf, size_t cap);

#endif
