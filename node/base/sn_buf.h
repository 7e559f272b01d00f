/* sn_buf: an owned, growable byte buffer, the output of the snapshot and wire encoders.
 * Embed it; sn_buf_init before use, sn_buf_fini when done. One owner; no locking. */
#ifndef SN_BUF_H
#define SN_BUF_H

#include <stddef.h>

typedef struct sn_buf {
    char *data;
    size_t len, cap;
} sn_buf;

/* sn_buf_init: an empty buffer that owns no memory yet. */
void sn_buf_init(sn_buf *b);
/* sn_buf_fini: frees the bytes; the buffer is empty and may be initialized again. */
void sn_buf_fini(sn_buf *b);
/* sn_buf_reset: len = 0, keeping the capacity so the next encode does not allocate. */
void sn_buf_reset(sn_buf *b);
/* sn_buf_reserve: makes room for n more bytes after len (capacity doubles from 256).
 * 0, or -1 when the size overflows or realloc fails; then b is unchanged. */
int sn_buf_reserve(sn_buf *b, size_t n);

#endif
