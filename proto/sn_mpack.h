/* sn_mpack: the one MessagePack layer of stage-node (spec 2.0): writers that append one value or
 * header to an sn_buf, and a bounded reader of one value header at a time. The snapshot and wire
 * formats are built on it; it knows neither. Why hand-written and not msgpack-c: docs/msgpack.md.
 * The hot primitives are inline; no state, any thread. */
#ifndef SN_MPACK_H
#define SN_MPACK_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sn_buf.h"
#include "sn_error.h"

#define SN_MPACK_EXT32_HDR 6 /* c9, u32 length, type: the fixed-width ext header */

/* ---- writers ------------------------------------------------------------------------------
 * Each reserves the room it writes (header and body together): SN_OK, or SN_ENOMEM with b
 * unchanged. Integers and lengths take their shortest form. Lengths and counts are < 2^32:
 * the caller checks (assert). */

/* sn_mpack_be_at: writes v big-endian in n bytes (1..8) at p. For payloads and patching. */
static inline void sn_mpack_be_at(void *p, uint64_t v, int n)
{
    uint8_t *q = p;
    for (int i = n - 1; i >= 0; i--) {
        q[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* sn_mpack_get_be: reads an n-byte (1..8) big-endian number at p. */
static inline uint64_t sn_mpack_get_be(const void *p, int n)
{
    const uint8_t *q = p;
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | q[i];
    return v;
}

/* sn_mpack_room: room for n more bytes; SN_OK or SN_ENOMEM. */
static inline int sn_mpack_room(sn_buf *b, size_t n)
{
    return b->cap - b->len >= n || sn_buf_reserve(b, n) == 0 ? SN_OK : SN_ENOMEM;
}

/* One tag byte and an n-byte big-endian number (n may be 0). */
static inline int sn_mpack_put_tagged(sn_buf *b, uint8_t tag, uint64_t v, int n)
{
    if (sn_mpack_room(b, 1 + (size_t)n)) return SN_ENOMEM;
    uint8_t *p = (uint8_t *)b->data + b->len;
    p[0] = tag;
    sn_mpack_be_at(p + 1, v, n);
    b->len += 1 + (size_t)n;
    return SN_OK;
}

static inline int sn_mpack_put_nil(sn_buf *b)
{
    return sn_mpack_put_tagged(b, 0xc0, 0, 0);
}

static inline int sn_mpack_put_bool(sn_buf *b, int v)
{
    return sn_mpack_put_tagged(b, v ? 0xc3 : 0xc2, 0, 0);
}

/* ---- raw-pointer forms --------------------------------------------------------------------
 * For an encoder that reserved room for a whole frame once (sn_wire's MESSAGE): each writes one
 * value or header at p, which must have room for its longest form (SN_MPACK_UINT_MAX bytes for
 * a uint, SN_MPACK_HDR_MAX for a header), and returns the bytes written. The sn_buf writers
 * are built on them, so this module alone decides every form. */

#define SN_MPACK_UINT_MAX 9 /* cf and 8 bytes */
#define SN_MPACK_HDR_MAX 5  /* a container, str or bin header: its tag and 4 bytes */

/* sn_mpack_uint_len: the bytes of v's shortest form (1, 2, 3, 5 or 9). */
static inline size_t sn_mpack_uint_len(uint64_t v)
{
    return v < 0x80 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffffu ? 5 : 9;
}

/* sn_mpack_uint_at: v in its shortest form (positive fixint, cc, cd, ce, cf) at p. */
static inline size_t sn_mpack_uint_at(void *p, uint64_t v)
{
    uint8_t *q = p;
    size_t n = sn_mpack_uint_len(v);
    q[0] = n == 1 ? (uint8_t)v : n == 2 ? 0xcc : n == 3 ? 0xcd : n == 5 ? 0xce : 0xcf;
    sn_mpack_be_at(q + 1, v, (int)n - 1);
    return n;
}

/* sn_mpack_container_len: the bytes of the header of n elements (1, 3 or 5). */
static inline size_t sn_mpack_container_len(uint32_t n)
{
    return n < 16 ? 1 : n <= 0xffff ? 3 : 5;
}

/* sn_mpack_container_hdr: an array (is_map 0) or map header of n elements (pairs) at p, in its
 * shortest form (fixarray/fixmap, dc/de, dd/df). */
static inline size_t sn_mpack_container_hdr(void *p, uint32_t n, int is_map)
{
    uint8_t *q = p;
    size_t len = sn_mpack_container_len(n);
    if (len == 1) {
        q[0] = (uint8_t)((is_map ? 0x80 : 0x90) | n);
        return 1;
    }
    q[0] = len == 3 ? (is_map ? 0xde : 0xdc) : (is_map ? 0xdf : 0xdd);
    sn_mpack_be_at(q + 1, n, (int)len - 1);
    return len;
}

/* sn_mpack_map_hdr: a map header of n pairs at p (sn_mpack_container_hdr). */
static inline size_t sn_mpack_map_hdr(void *p, uint32_t n)
{
    return sn_mpack_container_hdr(p, n, 1);
}

/* sn_mpack_array_hdr: an array header of n elements at p (sn_mpack_container_hdr). */
static inline size_t sn_mpack_array_hdr(void *p, uint32_t n)
{
    return sn_mpack_container_hdr(p, n, 0);
}

/* sn_mpack_str_hdr: a str header for n bytes at hdr (SN_MPACK_HDR_MAX bytes of room); its length. */
static inline size_t sn_mpack_str_hdr(uint8_t *hdr, size_t n)
{
    assert(n <= 0xffffffffu && "sn_mpack: string of 4 GiB or more");
    if (n < 32) {
        hdr[0] = (uint8_t)(0xa0 | n);
        return 1;
    }
    int w = n <= 0xff ? 1 : n <= 0xffff ? 2 : 4;
    hdr[0] = (uint8_t)(w == 1 ? 0xd9 : w == 2 ? 0xda : 0xdb);
    sn_mpack_be_at(hdr + 1, n, w);
    return 1 + (size_t)w;
}

/* sn_mpack_bin_hdr: a bin header for n bytes at hdr (SN_MPACK_HDR_MAX bytes of room); its length. */
static inline size_t sn_mpack_bin_hdr(uint8_t *hdr, size_t n)
{
    assert(n <= 0xffffffffu && "sn_mpack: bin of 4 GiB or more");
    int w = n <= 0xff ? 1 : n <= 0xffff ? 2 : 4;
    hdr[0] = (uint8_t)(w == 1 ? 0xc4 : w == 2 ? 0xc5 : 0xc6);
    sn_mpack_be_at(hdr + 1, n, w);
    return 1 + (size_t)w;
}

static inline int sn_mpack_put_uint(sn_buf *b, uint64_t v)
{
    if (sn_mpack_room(b, sn_mpack_uint_len(v))) return SN_ENOMEM;
    b->len += sn_mpack_uint_at(b->data + b->len, v);
    return SN_OK;
}

/* Non-negative values take the unsigned forms, as sn_mpack_put_uint. */
static inline int sn_mpack_put_int(sn_buf *b, int64_t v)
{
    if (v >= 0) return sn_mpack_put_uint(b, (uint64_t)v);
    if (v >= -32) return sn_mpack_put_tagged(b, (uint8_t)(v & 0xff), 0, 0);
    if (v >= INT8_MIN) return sn_mpack_put_tagged(b, 0xd0, (uint64_t)v & 0xff, 1);
    if (v >= INT16_MIN) return sn_mpack_put_tagged(b, 0xd1, (uint64_t)v & 0xffff, 2);
    if (v >= INT32_MIN) return sn_mpack_put_tagged(b, 0xd2, (uint64_t)v & 0xffffffffu, 4);
    return sn_mpack_put_tagged(b, 0xd3, (uint64_t)v, 8);
}

/* Always float 64 (cb), never narrowed: -0.0, inf and NaN payloads stay bit-exact. */
static inline int sn_mpack_put_double(sn_buf *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return sn_mpack_put_tagged(b, 0xcb, bits, 8);
}

static inline int sn_mpack_put_float(sn_buf *b, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return sn_mpack_put_tagged(b, 0xca, bits, 4);
}

/* An array (is_map 0) or map header of n elements (pairs). */
static inline int sn_mpack_put_container(sn_buf *b, uint32_t n, int is_map)
{
    if (sn_mpack_room(b, sn_mpack_container_len(n))) return SN_ENOMEM;
    b->len += sn_mpack_container_hdr(b->data + b->len, n, is_map);
    return SN_OK;
}

static inline int sn_mpack_put_array(sn_buf *b, uint32_t n)
{
    return sn_mpack_put_container(b, n, 0);
}

static inline int sn_mpack_put_map(sn_buf *b, uint32_t n)
{
    return sn_mpack_put_container(b, n, 1);
}

/* Writes a header of hdr_len bytes (already in hdr) and n body bytes in one reservation. */
static inline int sn_mpack_put_hdr_body(sn_buf *b, const uint8_t *hdr, size_t hdr_len,
                                        const void *body, size_t n)
{
    if (sn_mpack_room(b, hdr_len + n)) return SN_ENOMEM;
    if (hdr_len) memcpy(b->data + b->len, hdr, hdr_len);
    if (n) memcpy(b->data + b->len + hdr_len, body, n);
    b->len += hdr_len + n;
    return SN_OK;
}

/* A str: header and the n bytes at s (which may be NULL when n is 0). */
static inline int sn_mpack_put_str(sn_buf *b, const void *s, size_t n)
{
    uint8_t hdr[5];
    return sn_mpack_put_hdr_body(b, hdr, sn_mpack_str_hdr(hdr, n), s, n);
}

/* A bin: header and the n bytes at data (which may be NULL when n is 0). */
static inline int sn_mpack_put_bin(sn_buf *b, const void *data, size_t n)
{
    uint8_t hdr[5];
    return sn_mpack_put_hdr_body(b, hdr, sn_mpack_bin_hdr(hdr, n), data, n);
}

/* An ext header (shortest form: fixext 1/2/4/8/16, else ext 8/16/32) for len payload bytes; the
 * caller writes the payload next (sn_mpack_put_raw, sn_mpack_put_be). */
static inline int sn_mpack_put_ext_hdr(sn_buf *b, int8_t type, size_t len)
{
    assert(len <= 0xffffffffu && "sn_mpack: ext of 4 GiB or more");
    uint8_t hdr[6];
    size_t n;
    switch (len) {
    case 1:
        hdr[0] = 0xd4;
        n = 1;
        break;
    case 2:
        hdr[0] = 0xd5;
        n = 1;
        break;
    case 4:
        hdr[0] = 0xd6;
        n = 1;
        break;
    case 8:
        hdr[0] = 0xd7;
        n = 1;
        break;
    case 16:
        hdr[0] = 0xd8;
        n = 1;
        break;
    default: {
        int w = len <= 0xff ? 1 : len <= 0xffff ? 2 : 4;
        hdr[0] = (uint8_t)(w == 1 ? 0xc7 : w == 2 ? 0xc8 : 0xc9);
        sn_mpack_be_at(hdr + 1, len, w);
        n = 1 + (size_t)w;
    }
    }
    hdr[n++] = (uint8_t)type;
    return sn_mpack_put_hdr_body(b, hdr, n, NULL, 0);
}

/* sn_mpack_ext32_at: the fixed-width ext 32 header (SN_MPACK_EXT32_HDR bytes) at p, for a header
 * reserved before its payload's length is known and patched after. */
static inline void sn_mpack_ext32_at(void *p, int8_t type, uint32_t len)
{
    uint8_t *q = p;
    q[0] = 0xc9;
    sn_mpack_be_at(q + 1, len, 4);
    q[5] = (uint8_t)type;
}

/* Raw bytes (an ext payload, or a prefix that is not MessagePack). */
static inline int sn_mpack_put_raw(sn_buf *b, const void *data, size_t n)
{
    return sn_mpack_put_hdr_body(b, NULL, 0, data, n);
}

/* Raw big-endian number of n bytes (1..8): ext payloads. */
static inline int sn_mpack_put_be(sn_buf *b, uint64_t v, int n)
{
    if (sn_mpack_room(b, (size_t)n)) return SN_ENOMEM;
    sn_mpack_be_at(b->data + b->len, v, n);
    b->len += (size_t)n;
    return SN_OK;
}

/* sn_mpack_patch_count: rewrites the array or map header at hdr (written by this module) to
 * count n in the same width; n must fit that width (assert). */
void sn_mpack_patch_count(void *hdr, uint32_t n);

/* ---- reader -------------------------------------------------------------------------------- */

typedef enum sn_mpack_type {
    SN_MPACK_NIL,
    SN_MPACK_BOOL,   /* u: 0 or 1 */
    SN_MPACK_UINT,   /* u: the value (positive fixint, cc..cf) */
    SN_MPACK_INT,    /* i: the value, sign-extended (negative fixint, d0..d3) */
    SN_MPACK_FLOAT,  /* f32 (ca) */
    SN_MPACK_DOUBLE, /* f64 (cb) */
    SN_MPACK_STR,    /* u: length; data: the bytes */
    SN_MPACK_BIN,    /* u: length; data: the bytes */
    SN_MPACK_ARRAY,  /* u: element count; the elements follow */
    SN_MPACK_MAP,    /* u: pair count; the pairs follow */
    SN_MPACK_EXT     /* u: payload length; ext: its type; data: the payload */
} sn_mpack_type;

typedef struct sn_mpack_item {
    sn_mpack_type type;
    union {
        uint64_t u;
        int64_t i;
        float f;
        double d;
    } v;
    int8_t ext;
    const uint8_t *data; /* STR, BIN, EXT only; not set for the other types */
} sn_mpack_item;

/* Why a read failed; the caller words the message and chooses the error code. */
typedef enum sn_mpack_fail {
    SN_MPACK_OK = 0,
    SN_MPACK_TRUNCATED, /* the header is cut short (or there is no byte at all) */
    SN_MPACK_INVALID,   /* 0xc1, the one byte MessagePack never uses */
    SN_MPACK_OVERRUN    /* a str, bin or ext longer than the bytes left; it holds its type,
                         * length (and ext type), not its data */
} sn_mpack_fail;

/* sn_mpack_read: reads the value header at *p (never past end) into it and moves *p past it,
 * and past the body of a str, bin or ext (whose length is checked against the bytes left).
 * Array and map counts are not checked here: the format knows how small an element can be.
 * SN_MPACK_OK, or a reason with *p unchanged. Always inline: the decoders' hot path. */
static inline __attribute__((always_inline)) sn_mpack_fail
sn_mpack_read(const uint8_t **p, const uint8_t *end, sn_mpack_item *it)
{
    const uint8_t *q = *p;
    if (q >= end) return SN_MPACK_TRUNCATED;
    uint8_t c = *q++;
    if (c < 0x80) {
        it->type = SN_MPACK_UINT;
        it->v.u = c;
        *p = q;
        return SN_MPACK_OK;
    }
    size_t left = (size_t)(end - q);
    int w; /* bytes of number or length after the tag */
    if (c >= 0xe0) {
        it->type = SN_MPACK_INT;
        it->v.i = (int8_t)c;
        *p = q;
        return SN_MPACK_OK;
    }
    if (c <= 0x9f) {
        it->type = c <= 0x8f ? SN_MPACK_MAP : SN_MPACK_ARRAY;
        it->v.u = c & 0x0f;
        *p = q;
        return SN_MPACK_OK;
    }
    if (c <= 0xbf) {
        it->type = SN_MPACK_STR;
        it->v.u = c & 0x1f;
        goto body;
    }
    switch (c) {
    case 0xc0:
        it->type = SN_MPACK_NIL;
        *p = q;
        return SN_MPACK_OK;
    case 0xc1:
        return SN_MPACK_INVALID;
    case 0xc2:
    case 0xc3:
        it->type = SN_MPACK_BOOL;
        it->v.u = c & 1;
        *p = q;
        return SN_MPACK_OK;
    case 0xca:
    case 0xcb: {
        w = c == 0xca ? 4 : 8;
        if (left < (size_t)w) return SN_MPACK_TRUNCATED;
        uint64_t v = sn_mpack_get_be(q, w);
        if (w == 4) {
            uint32_t bits = (uint32_t)v;
            it->type = SN_MPACK_FLOAT;
            memcpy(&it->v.f, &bits, sizeof bits);
        } else {
            it->type = SN_MPACK_DOUBLE;
            memcpy(&it->v.d, &v, sizeof v);
        }
        *p = q + w;
        return SN_MPACK_OK;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        w = 1 << (c - 0xcc);
        if (left < (size_t)w) return SN_MPACK_TRUNCATED;
        it->type = SN_MPACK_UINT;
        it->v.u = sn_mpack_get_be(q, w);
        *p = q + w;
        return SN_MPACK_OK;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        w = 1 << (c - 0xd0);
        if (left < (size_t)w) return SN_MPACK_TRUNCATED;
        uint64_t v = sn_mpack_get_be(q, w), sign = (uint64_t)1 << (8 * w - 1);
        it->type = SN_MPACK_INT;
        it->v.i = w == 8 ? (int64_t)v : (int64_t)(v ^ sign) - (int64_t)sign;
        *p = q + w;
        return SN_MPACK_OK;
    }
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf:
        w = (c & 1) ? 4 : 2;
        if (left < (size_t)w) return SN_MPACK_TRUNCATED;
        it->type = c <= 0xdd ? SN_MPACK_ARRAY : SN_MPACK_MAP;
        it->v.u = sn_mpack_get_be(q, w);
        *p = q + w;
        return SN_MPACK_OK;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        it->type = SN_MPACK_EXT;
        it->v.u = (uint64_t)1 << (c - 0xd4);
        break;
    default: /* str 8/16/32 d9..db, bin 8/16/32 c4..c6, ext 8/16/32 c7..c9 */
        if (c >= 0xd9) {
            it->type = SN_MPACK_STR;
            w = 1 << (c - 0xd9);
        } else if (c <= 0xc6) {
            it->type = SN_MPACK_BIN;
            w = 1 << (c - 0xc4);
        } else {
            it->type = SN_MPACK_EXT;
            w = 1 << (c - 0xc7);
        }
        if (left < (size_t)w) return SN_MPACK_TRUNCATED;
        it->v.u = sn_mpack_get_be(q, w);
        q += w;
        left -= (size_t)w;
    }
    if (it->type == SN_MPACK_EXT) {
        if (left < 1) return SN_MPACK_TRUNCATED;
        it->ext = (int8_t)*q++;
        left--;
    }
body:
    if (it->v.u > left) return SN_MPACK_OVERRUN;
    it->data = q;
    *p = q + it->v.u;
    return SN_MPACK_OK;
}

#endif
