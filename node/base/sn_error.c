/* sn_error: messages for the error enum. */
#include "sn_error.h"

const char *sn_strerror(int err)
{
    switch ((sn_err)err) {
    case SN_OK: return "no error";
    case SN_ENOMEM: return "out of memory";
    case SN_EINVAL: return "invalid argument";
    case SN_EPROTO: return "malformed data";
    case SN_ENOENT: return "not found";
    case SN_ELIMIT: return "limit exceeded";
    case SN_ENOTSUP: return "not supported";
    case SN_EIO: return "I/O error";
    case SN_ELUA: return "Lua error";
    case SN_EFULL: return "queue full";
    case SN_ECLOSED: return "closed";
    case SN_ETIMEDOUT: return "timed out";
    case SN_EUNTRUSTED: return "untrusted source";
    }
    return "unknown error";
}
