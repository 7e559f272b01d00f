/* sn_error: the one error enum of stage-node and its messages.
 * Every fallible function returns one of these; detail goes to the log or a caller's buffer. */
#ifndef SN_ERROR_H
#define SN_ERROR_H

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
    SN_EUNTRUSTED /* code offered by a source that is not trusted */
} sn_err;

/* sn_strerror: a static, human-readable text for err; never NULL. */
const char *sn_strerror(int err);

#endif
