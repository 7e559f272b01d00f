/* sn_buf: the growable byte buffer of sn_buf.h. */
#include "sn_buf.h"

#include <stdint.h>
#include <stdlib.h>

void sn_buf_init(sn_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void sn_buf_fini(sn_buf *b)
{
    free(b->data);
    sn_buf_init(b);
}

void sn_buf_reset(sn_buf *b)
{
    b->len = 0;
}

int sn_buf_reserve(sn_buf *b, size_t n)
{
    if (b->cap - b->len >= n) return 0;
    if (n > SIZE_MAX / 2 - b->len) return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}
