/* sn_snapshot_error: version byte, fixarray of 2, nil, then the text as the shortest str. */
#include "sn_snapshot_error.h"
#include "sn_error.h"

#include <stdint.h>
#include <string.h>

int sn_snapshot_encode_error(sn_buf *out, const char *text)
{
    size_t n = strlen(text);
    if ((uint64_t)n > 0xffffffffu)
        return SN_ELIMIT;
    if (sn_buf_reserve(out, 3 + 5 + n) != 0)
        return SN_ENOMEM;
    unsigned char *p = (unsigned char *)out->data + out->len;
    *p++ = 0x01; /* snapshot version */
    *p++ = 0x92; /* two values */
    *p++ = 0xc0; /* nil */
    if (n < 32) {
        *p++ = (unsigned char)(0xa0 | n);
    } else if (n <= 0xff) {
        *p++ = 0xd9;
        *p++ = (unsigned char)n;
    } else if (n <= 0xffff) {
        *p++ = 0xda;
        *p++ = (unsigned char)(n >> 8);
        *p++ = (unsigned char)n;
    } else {
        *p++ = 0xdb;
        for (int s = 24; s >= 0; s -= 8)
            *p++ = (unsigned char)(n >> s);
    }
    memcpy(p, text, n);
    p += n;
    out->len = (size_t)(p - (unsigned char *)out->data);
    return SN_OK;
}
