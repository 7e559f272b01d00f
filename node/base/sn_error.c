/* sn_error: messages for the error enum. */
#include "sn_error.h"

#include <assert.h>
#include <stdio.h>

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
    case SN_ENOROUTE: return "no route";
    case SN_EDOWN: return "node down";
    }
    return "unknown error";
}

const char *sn_error_text(int code, const char *subject, char *buf, size_t cap)
{
    assert(buf && cap > 0 && "sn_error_text: no buffer");
    const char *text;
    switch (code) {
    case SN_EFULL: text = "mailbox full"; break;
    case SN_ETIMEDOUT: text = "timeout"; break;
    case SN_ENOROUTE:
        if (subject) {
            snprintf(buf, cap, "no route to %s", subject);
            return buf;
        }
        text = "no route";
        break;
    default: text = sn_strerror(code); break;
    }
    if (subject && *subject)
        snprintf(buf, cap, "%s: %s", text, subject);
    else
        snprintf(buf, cap, "%s", text);
    return buf;
}
