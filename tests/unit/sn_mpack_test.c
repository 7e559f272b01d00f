/* Tests for sn_mpack: every writer against msgpack-c (the reference implementation) byte for
 * byte at every width boundary, the reader over what msgpack-c wrote, and the reader on every
 * truncation (run under ASan: it must never read past the end). */
#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sn_mpack.h"

static const uint64_t uints[] = {0,          1,           0x7f,           0x80,
                                 0xff,       0x100,       0xffff,         0x10000,
                                 0xffffffff, 0x100000000, UINT64_MAX - 1, UINT64_MAX};
static const int64_t ints[] = {0,
                               -1,
                               -31,
                               -32,
                               -33,
                               -127,
                               -128,
                               -129,
                               -32767,
                               -32768,
                               -32769,
                               INT32_MIN + 1LL,
                               INT32_MIN,
                               INT32_MIN - 1LL,
                               INT64_MIN + 1,
                               INT64_MIN,
                               5,
                               300,
                               INT64_MAX};
static const size_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000};

typedef struct both {
    sn_buf b;
    msgpack_sbuffer s;
    msgpack_packer pk;
} both;

static void both_init(both *x)
{
    sn_buf_init(&x->b);
    msgpack_sbuffer_init(&x->s);
    msgpack_packer_init(&x->pk, &x->s, msgpack_sbuffer_write);
}

static void both_fini(both *x)
{
    sn_buf_fini(&x->b);
    msgpack_sbuffer_destroy(&x->s);
}

static void same(both *x, const char *what)
{
    cr_assert_eq(x->b.len, x->s.size, "%s: %zu bytes, msgpack-c wrote %zu", what, x->b.len,
                 x->s.size);
    cr_assert(memcmp(x->b.data, x->s.data, x->b.len) == 0, "%s: bytes differ from msgpack-c", what);
}

Test(sn_mpack, writers_match_msgpack_c)
{
    both x;
    both_init(&x);
    for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
        cr_assert_eq(sn_mpack_put_uint(&x.b, uints[i]), SN_OK);
        msgpack_pack_uint64(&x.pk, uints[i]);
    }
    same(&x, "uint");
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        cr_assert_eq(sn_mpack_put_int(&x.b, ints[i]), SN_OK);
        msgpack_pack_int64(&x.pk, ints[i]);
    }
    same(&x, "int");
    double ds[] = {0.0, -0.0, 1.5, -1e300, INFINITY, NAN};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        sn_mpack_put_double(&x.b, ds[i]);
        msgpack_pack_double(&x.pk, ds[i]);
        sn_mpack_put_float(&x.b, (float)ds[i]);
        msgpack_pack_float(&x.pk, (float)ds[i]);
    }
    same(&x, "float");
    sn_mpack_put_nil(&x.b);
    msgpack_pack_nil(&x.pk);
    sn_mpack_put_bool(&x.b, 1);
    msgpack_pack_true(&x.pk);
    sn_mpack_put_bool(&x.b, 0);
    msgpack_pack_false(&x.pk);
    same(&x, "nil, bool");
    char *big = malloc(70000);
    memset(big, 'x', 70000);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        sn_mpack_put_str(&x.b, big, n);
        msgpack_pack_str(&x.pk, n);
        msgpack_pack_str_body(&x.pk, big, n);
        sn_mpack_put_bin(&x.b, big, n);
        msgpack_pack_bin(&x.pk, n);
        msgpack_pack_bin_body(&x.pk, big, n);
        if (n > 0) {
            sn_mpack_put_ext_hdr(&x.b, 5, n);
            sn_mpack_put_raw(&x.b, big, n);
            msgpack_pack_ext(&x.pk, n, 5);
            msgpack_pack_ext_body(&x.pk, big, n);
        }
        uint32_t c = (uint32_t)n;
        sn_mpack_put_array(&x.b, c);
        msgpack_pack_array(&x.pk, c);
        sn_mpack_put_map(&x.b, c);
        msgpack_pack_map(&x.pk, c);
        same(&x, "str, bin, ext, array, map");
    }
    free(big);
    both_fini(&x);
}

/* msgpack-c's bytes for one value, packed by pack into a fresh buffer, against the n bytes at
 * got; and nothing written past them (the guard bytes keep 0xee). */
static void raw_same(const uint8_t *got, size_t n, size_t cap, const msgpack_sbuffer *want,
                     const char *what, uint64_t v)
{
    cr_assert_eq(n, want->size, "%s %llu: %zu bytes, msgpack-c wrote %zu", what,
                 (unsigned long long)v, n, want->size);
    cr_assert(memcmp(got, want->data, n) == 0, "%s %llu: bytes differ from msgpack-c", what,
              (unsigned long long)v);
    for (size_t i = n; i < cap; i++)
        cr_assert_eq(got[i], 0xee, "%s %llu: byte %zu past the form was written", what,
                     (unsigned long long)v, i);
}

/* The raw-pointer forms (sn_wire's MESSAGE writes through them) at every width boundary: the
 * bytes of msgpack-c, within their stated room, and the length they return. */
Test(sn_mpack, raw_pointer_forms_match_msgpack_c)
{
    uint8_t w[SN_MPACK_UINT_MAX + 4];
    for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
        msgpack_sbuffer s;
        msgpack_sbuffer_init(&s);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &s, msgpack_sbuffer_write);
        msgpack_pack_uint64(&pk, uints[i]);
        memset(w, 0xee, sizeof w);
        size_t n = sn_mpack_uint_at(w, uints[i]);
        cr_assert_eq(n, sn_mpack_uint_len(uints[i]));
        cr_assert_leq(n, SN_MPACK_UINT_MAX);
        raw_same(w, n, sizeof w, &s, "uint", uints[i]);
        msgpack_sbuffer_destroy(&s);
    }
    static const uint32_t counts[] = {0, 1, 15, 16, 255, 256, 65535, 65536, UINT32_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        for (int is_map = 0; is_map <= 1; is_map++) {
            msgpack_sbuffer s;
            msgpack_sbuffer_init(&s);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &s, msgpack_sbuffer_write);
            if (is_map)
                msgpack_pack_map(&pk, counts[i]);
            else
                msgpack_pack_array(&pk, counts[i]);
            memset(w, 0xee, sizeof w);
            size_t n = is_map ? sn_mpack_map_hdr(w, counts[i]) : sn_mpack_array_hdr(w, counts[i]);
            cr_assert_eq(n, sn_mpack_container_len(counts[i]));
            cr_assert_leq(n, SN_MPACK_HDR_MAX);
            raw_same(w, n, sizeof w, &s, is_map ? "map" : "array", counts[i]);
            msgpack_sbuffer_destroy(&s);
        }
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int is_bin = 0; is_bin <= 1; is_bin++) {
            msgpack_sbuffer s;
            msgpack_sbuffer_init(&s);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &s, msgpack_sbuffer_write);
            if (is_bin)
                msgpack_pack_bin(&pk, lens[i]);
            else
                msgpack_pack_str(&pk, lens[i]);
            memset(w, 0xee, sizeof w);
            size_t n = is_bin ? sn_mpack_bin_hdr(w, lens[i]) : sn_mpack_str_hdr(w, lens[i]);
            cr_assert_leq(n, SN_MPACK_HDR_MAX);
            raw_same(w, n, sizeof w, &s, is_bin ? "bin" : "str", lens[i]);
            msgpack_sbuffer_destroy(&s);
        }
    }
}

Test(sn_mpack, reader_reads_what_msgpack_c_wrote)
{
    both x;
    both_init(&x);
    for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++)
        msgpack_pack_uint64(&x.pk, uints[i]);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        msgpack_pack_int64(&x.pk, ints[i]);
    msgpack_pack_double(&x.pk, -2.25);
    msgpack_pack_float(&x.pk, 0.5f);
    msgpack_pack_nil(&x.pk);
    msgpack_pack_true(&x.pk);
    msgpack_pack_str_with_body(&x.pk, "hello", 5);
    msgpack_pack_bin_with_body(&x.pk, "\0\1", 2);
    msgpack_pack_ext_with_body(&x.pk, "abc", 3, -7);
    msgpack_pack_array(&x.pk, 70000);
    msgpack_pack_map(&x.pk, 3);
    const uint8_t *p = (const uint8_t *)x.s.data, *end = p + x.s.size;
    sn_mpack_item it;
    for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
        cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
        cr_assert_eq(it.type, SN_MPACK_UINT);
        cr_assert_eq(it.v.u, uints[i]);
    }
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
        if (ints[i] >= 0) {
            cr_assert_eq(it.type, SN_MPACK_UINT);
            cr_assert_eq(it.v.u, (uint64_t)ints[i]);
        } else {
            cr_assert_eq(it.type, SN_MPACK_INT);
            cr_assert_eq(it.v.i, ints[i], "%lld read as %lld", (long long)ints[i],
                         (long long)it.v.i);
        }
    }
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_DOUBLE && it.v.d == -2.25);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_FLOAT && it.v.f == 0.5f);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert_eq(it.type, SN_MPACK_NIL);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_BOOL && it.v.u == 1);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_STR && it.v.u == 5 && memcmp(it.data, "hello", 5) == 0);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_BIN && it.v.u == 2 && it.data[1] == 1);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_EXT && it.ext == -7 && it.v.u == 3 && it.data[2] == 'c');
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_ARRAY && it.v.u == 70000);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_OK);
    cr_assert(it.type == SN_MPACK_MAP && it.v.u == 3);
    cr_assert_eq(p, end);
    cr_assert_eq(sn_mpack_read(&p, end, &it), SN_MPACK_TRUNCATED);
    both_fini(&x);
}

/* Every prefix of every kind of value: the read fails with p unchanged, from an exactly sized
 * heap copy so that ASan sees a read past the end. */
Test(sn_mpack, truncation_never_reads_past_the_end)
{
    both x;
    both_init(&x);
    sn_mpack_put_uint(&x.b, UINT64_MAX);
    sn_mpack_put_int(&x.b, INT64_MIN);
    sn_mpack_put_double(&x.b, 1.0);
    sn_mpack_put_str(&x.b, "a string of more than 32 bytes.....", 35);
    sn_mpack_put_bin(&x.b, "bin", 3);
    sn_mpack_put_ext_hdr(&x.b, 3, 300);
    for (int i = 0; i < 300; i++)
        sn_mpack_put_raw(&x.b, "e", 1);
    sn_mpack_put_ext_hdr(&x.b, 1, 4);
    sn_mpack_put_be(&x.b, 0x01020304, 4);
    sn_mpack_put_map(&x.b, 70000);
    const uint8_t *all = (const uint8_t *)x.b.data, *stop = all + x.b.len;
    const uint8_t *at = all;
    while (at < stop) {
        const uint8_t *q = at;
        sn_mpack_item whole;
        cr_assert_eq(sn_mpack_read(&q, stop, &whole), SN_MPACK_OK);
        size_t n = (size_t)(q - at);
        for (size_t k = 0; k < n; k++) {
            uint8_t *copy = malloc(k ? k : 1);
            memcpy(copy, at, k);
            const uint8_t *p = copy;
            sn_mpack_item it;
            sn_mpack_fail f = sn_mpack_read(&p, copy + k, &it);
            cr_assert(f == SN_MPACK_TRUNCATED || f == SN_MPACK_OVERRUN, "prefix %zu of %zu", k, n);
            cr_assert_eq(p, copy, "a failed read moved the cursor");
            free(copy);
        }
        at = q;
    }
    static const uint8_t c1 = 0xc1;
    const uint8_t *p = &c1;
    sn_mpack_item it;
    cr_assert_eq(sn_mpack_read(&p, &c1 + 1, &it), SN_MPACK_INVALID);
    both_fini(&x);
}

Test(sn_mpack, patch_keeps_the_width)
{
    sn_buf b;
    sn_buf_init(&b);
    uint32_t counts[] = {3, 300, 70000};
    for (int i = 0; i < 3; i++) {
        sn_buf_reset(&b);
        sn_mpack_put_map(&b, counts[i]);
        size_t w = b.len;
        sn_mpack_patch_count(b.data, 2);
        const uint8_t *p = (const uint8_t *)b.data;
        sn_mpack_item it;
        cr_assert_eq(sn_mpack_read(&p, p + w, &it), SN_MPACK_OK);
        cr_assert(it.type == SN_MPACK_MAP && it.v.u == 2);
        cr_assert_eq(p, (const uint8_t *)b.data + w);
    }
    sn_buf_fini(&b);
}
