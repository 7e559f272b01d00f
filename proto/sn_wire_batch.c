/* sn_wire_batch: the encoder writes the entries after a reserved prefix and, when the count is
 * known, writes the shortest header right before them, so a batch is never copied whole and
 * its encoding stays canonical. The reader validates the whole batch before handing out its
 * first frame. */
#include "sn_wire_batch.h"
#include "sn_error.h"
#include "sn_mpack.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { PREFIX = SN_WIRE_HEADER_LEN + 2 + SN_MPACK_HDR_MAX /* header, fixmap 1 + key 1, array */ };

void sn_wire_batch_init(sn_wire_batch *b)
{
    sn_buf_init(&b->buf);
    sn_wire_batch_reset(b);
}

void sn_wire_batch_fini(sn_wire_batch *b)
{
    sn_buf_fini(&b->buf);
}

void sn_wire_batch_reset(sn_wire_batch *b)
{
    sn_buf_reset(&b->buf);
    b->count = 0;
    b->first_at = b->first_len = 0;
}

static size_t array_hdr_len(uint32_t n)
{
    return n < 16 ? 1 : n < 65536 ? 3 : 5;
}

size_t sn_wire_batch_size(const sn_wire_batch *b, size_t len)
{
    size_t body = b->buf.len > PREFIX ? b->buf.len - PREFIX : 0;
    uint32_t n = b->count;
    if (len) {
        uint8_t hdr[5];
        body += sn_mpack_bin_hdr(hdr, len) + len;
        n++;
    }
    return SN_WIRE_HEADER_LEN + 2 + array_hdr_len(n) + body;
}

int sn_wire_batch_add(sn_wire_batch *b, const void *frame, size_t len)
{
    uint8_t hdr[5];
    size_t hl = sn_mpack_bin_hdr(hdr, len);
    size_t start = b->buf.len < PREFIX ? PREFIX : b->buf.len;
    if (sn_buf_reserve(&b->buf, start - b->buf.len + hl + len) != 0)
        return SN_ENOMEM;
    memcpy(b->buf.data + start, hdr, hl);
    memcpy(b->buf.data + start + hl, frame, len);
    if (b->count == 0) {
        b->first_at = start + hl;
        b->first_len = len;
    }
    b->buf.len = start + hl + len;
    b->count++;
    return SN_OK;
}

void sn_wire_batch_finish(sn_wire_batch *b, const char **data, size_t *len)
{
    if (b->count <= 1) {
        *data = b->count ? b->buf.data + b->first_at : NULL;
        *len = b->count ? b->first_len : 0;
        return;
    }
    uint8_t head[PREFIX];
    size_t n = 0;
    head[n++] = SN_WIRE_MAGIC;
    head[n++] = SN_WIRE_VERSION;
    head[n++] = SN_WIRE_BATCH;
    n += sn_mpack_map_hdr(head + n, 1);     /* a map of one field: */
    n += sn_mpack_uint_at(head + n, 1);     /* field 1, the frames */
    n += sn_mpack_array_hdr(head + n, b->count);
    memcpy(b->buf.data + PREFIX - n, head, n);
    *data = b->buf.data + PREFIX - n;
    *len = b->buf.len - (PREFIX - n);
}

/* ---- reading ------------------------------------------------------------------------------ */

__attribute__((format(printf, 5, 6))) static int fail(int code, char *err, size_t errlen,
                                                      size_t at, const char *fmt, ...)
{
    if (err && errlen) {
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "BATCH at byte %zu: %s", at, what);
    }
    return code;
}

int sn_wire_batch_is(const char *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    return len >= SN_WIRE_HEADER_LEN && p[0] == SN_WIRE_MAGIC && p[1] == SN_WIRE_VERSION &&
           p[2] == SN_WIRE_BATCH;
}

/* Skips one value (an unknown field of a newer revision), nesting bounded by depth. */
static int skip(const uint8_t **p, const uint8_t *end, int level, int depth)
{
    sn_mpack_item it;
    if (sn_mpack_read(p, end, &it) != SN_MPACK_OK)
        return SN_EPROTO;
    if (it.type != SN_MPACK_MAP && it.type != SN_MPACK_ARRAY)
        return SN_OK;
    if (level > depth)
        return SN_ELIMIT;
    uint64_t items = it.v.u * (it.type == SN_MPACK_MAP ? 2 : 1);
    if (items > (uint64_t)(end - *p))
        return SN_EPROTO; /* every value takes a byte at least */
    for (uint64_t i = 0; i < items; i++) {
        int rc = skip(p, end, level + 1, depth);
        if (rc != SN_OK)
            return rc;
    }
    return SN_OK;
}

int sn_wire_batch_open(const char *data, size_t len, const sn_wire_limits *lim,
                       sn_wire_batch_reader *r, char *err, size_t errlen)
{
    sn_wire_limits dflt;
    if (!lim) {
        sn_wire_limits_init(&dflt);
        lim = &dflt;
    }
    r->p = r->end = NULL;
    r->left = 0;
    if (!sn_wire_batch_is(data, len))
        return fail(SN_EPROTO, err, errlen, 0, "not a BATCH frame of version %d",
                    SN_WIRE_VERSION);
    if (len > lim->max_frame)
        return fail(SN_ELIMIT, err, errlen, 0, "%zu bytes, over the frame limit of %zu", len,
                    lim->max_frame);
    const uint8_t *base = (const uint8_t *)data, *end = base + len;
    const uint8_t *p = base + SN_WIRE_HEADER_LEN, *frames = NULL;
    uint32_t nframes = 0;
    sn_mpack_item it;
    if (sn_mpack_read(&p, end, &it) != SN_MPACK_OK || it.type != SN_MPACK_MAP)
        return fail(SN_EPROTO, err, errlen, SN_WIRE_HEADER_LEN, "the body is not a map");
    if (it.v.u > (uint64_t)(end - p) / 2)
        return fail(SN_EPROTO, err, errlen, SN_WIRE_HEADER_LEN, "%llu pairs cannot fit in "
                    "the %zu bytes left", (unsigned long long)it.v.u, (size_t)(end - p));
    for (uint64_t pair = it.v.u; pair > 0; pair--) {
        size_t at = (size_t)(p - base);
        sn_mpack_item key;
        if (sn_mpack_read(&p, end, &key) != SN_MPACK_OK || key.type != SN_MPACK_UINT)
            return fail(SN_EPROTO, err, errlen, at, "a field number (unsigned) expected");
        if (key.v.u != 1) {
            int rc = skip(&p, end, 2, lim->max_depth);
            if (rc != SN_OK)
                return fail(rc, err, errlen, at, "field %llu: %s", (unsigned long long)key.v.u,
                            rc == SN_ELIMIT ? "nested too deep" : "malformed value");
            continue;
        }
        if (frames)
            return fail(SN_EPROTO, err, errlen, at, "field 1 given twice");
        at = (size_t)(p - base);
        sn_mpack_item arr;
        if (sn_mpack_read(&p, end, &arr) != SN_MPACK_OK || arr.type != SN_MPACK_ARRAY)
            return fail(SN_EPROTO, err, errlen, at, "field 1: an array of frames expected");
        if (arr.v.u > (uint64_t)(end - p) / (1 + SN_WIRE_HEADER_LEN + 1))
            return fail(SN_EPROTO, err, errlen, at, "%llu frames cannot fit in the %zu bytes "
                        "left", (unsigned long long)arr.v.u, (size_t)(end - p));
        frames = p;
        nframes = (uint32_t)arr.v.u;
        for (uint32_t i = 0; i < nframes; i++) {
            at = (size_t)(p - base);
            sn_mpack_item bin;
            if (sn_mpack_read(&p, end, &bin) != SN_MPACK_OK || bin.type != SN_MPACK_BIN)
                return fail(SN_EPROTO, err, errlen, at, "frame %u: a bin expected", i + 1);
            if (bin.v.u <= SN_WIRE_HEADER_LEN || bin.data[0] != SN_WIRE_MAGIC ||
                bin.data[1] != SN_WIRE_VERSION)
                return fail(SN_EPROTO, err, errlen, at, "frame %u: not a frame of version %d",
                            i + 1, SN_WIRE_VERSION);
            if (bin.data[2] == SN_WIRE_BATCH)
                return fail(SN_EPROTO, err, errlen, at, "frame %u: a BATCH inside a BATCH",
                            i + 1);
        }
    }
    if (p != end)
        return fail(SN_EPROTO, err, errlen, (size_t)(p - base), "%zu bytes after the body",
                    (size_t)(end - p));
    r->p = frames;
    r->end = end;
    r->left = nframes;
    return SN_OK;
}

int sn_wire_batch_next(sn_wire_batch_reader *r, const char **frame, size_t *len)
{
    if (!r->left)
        return 0;
    sn_mpack_item bin = {.data = NULL};
    if (sn_mpack_read(&r->p, r->end, &bin) != SN_MPACK_OK || !bin.data) { /* open checked it */
        r->left = 0;
        return 0;
    }
    r->left--;
    *frame = (const char *)bin.data;
    *len = (size_t)bin.v.u;
    return 1;
}
