/* Tests for sn_wire_batch: round trips (0, 1, 15, 16, 70000 frames: every array header),
 * canonical bytes, and hostile batches (nesting, bad entries, count bombs, trailing bytes,
 * over the frame limit). Run under ASan+UBSan: every read stays in bounds. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_wire.h"
#include "sn_wire_batch.h"

/* A MESSAGE frame whose msg_id is "m<i>". */
static void message(sn_buf *out, unsigned i)
{
    char id[32];
    snprintf(id, sizeof id, "m%u", i);
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_MESSAGE);
    f.u.message.src = (sn_wire_addr){"A", 1, 2, "s"};
    f.u.message.dst = (sn_wire_addr){"B", 0, 0, "sink"};
    f.u.message.msg_id = id;
    f.u.message.seq = i + 1;
    sn_buf_reset(out);
    cr_assert_eq(sn_wire_encode(&f, NULL, out, NULL, 0), SN_OK);
}

static void round_trip(unsigned n)
{
    sn_wire_batch b;
    sn_wire_batch_init(&b);
    sn_buf one;
    sn_buf_init(&one);
    for (unsigned i = 0; i < n; i++) {
        message(&one, i);
        size_t want = sn_wire_batch_size(&b, one.len);
        cr_assert_eq(sn_wire_batch_add(&b, one.data, one.len), SN_OK);
        if (i > 0) { /* the size told before adding is the size sent */
            const char *d;
            size_t l;
            sn_wire_batch_finish(&b, &d, &l);
            cr_assert_eq(l, want, "frames %u: size %zu, told %zu", i + 1, l, want);
        }
    }
    const char *data;
    size_t len;
    sn_wire_batch_finish(&b, &data, &len);
    if (n == 0) {
        cr_assert_eq(len, 0);
    } else if (n == 1) { /* a batch of one goes as the frame itself */
        message(&one, 0);
        cr_assert_eq(len, one.len);
        cr_assert_eq(memcmp(data, one.data, len), 0);
        cr_assert_not(sn_wire_batch_is(data, len));
    } else {
        cr_assert(sn_wire_batch_is(data, len));
        sn_wire_limits lim;
        sn_wire_limits_init(&lim);
        lim.max_frame = 64u * 1024 * 1024;
        sn_wire_batch_reader r;
        char err[256] = "";
        cr_assert_eq(sn_wire_batch_open(data, len, &lim, &r, err, sizeof err), SN_OK, "%s", err);
        const char *fr;
        size_t fl;
        unsigned got = 0;
        while (sn_wire_batch_next(&r, &fr, &fl)) {
            message(&one, got);
            cr_assert_eq(fl, one.len);
            cr_assert_eq(memcmp(fr, one.data, fl), 0, "frame %u differs", got);
            sn_wire_frame f;
            cr_assert_eq(sn_wire_decode(fr, fl, NULL, &f, err, sizeof err), SN_OK, "%s", err);
            cr_assert_eq(f.u.message.seq, got + 1);
            sn_wire_frame_fini(&f);
            got++;
        }
        cr_assert_eq(got, n);
    }
    sn_buf_fini(&one);
    sn_wire_batch_fini(&b);
}

Test(sn_wire_batch, round_trips_every_array_header)
{
    round_trip(0);
    round_trip(1);
    round_trip(2);
    round_trip(15);
    round_trip(16);
    round_trip(65535);
    round_trip(70000);
}

Test(sn_wire_batch, canonical_bytes_of_a_small_batch)
{
    sn_wire_batch b;
    sn_wire_batch_init(&b);
    const char f1[] = "\xc1\x01\x06\x80", f2[] = "\xc1\x01\x07\x80";
    cr_assert_eq(sn_wire_batch_add(&b, f1, 4), SN_OK);
    cr_assert_eq(sn_wire_batch_add(&b, f2, 4), SN_OK);
    const char *d;
    size_t l;
    sn_wire_batch_finish(&b, &d, &l);
    const char want[] = "\xc1\x01\x12\x81\x01\x92\xc4\x04\xc1\x01\x06\x80\xc4\x04\xc1\x01\x07\x80";
    cr_assert_eq(l, sizeof want - 1);
    cr_assert_eq(memcmp(d, want, l), 0);
    sn_wire_batch_reset(&b); /* reusable */
    cr_assert_eq(sn_wire_batch_add(&b, f2, 4), SN_OK);
    sn_wire_batch_finish(&b, &d, &l);
    cr_assert_eq(l, 4);
    cr_assert_eq(memcmp(d, f2, 4), 0);
    sn_wire_batch_fini(&b);
}

static int open_bytes(const char *bytes, size_t len, char *err, size_t errlen)
{
    sn_wire_batch_reader r;
    return sn_wire_batch_open(bytes, len, NULL, &r, err, errlen);
}

#define BAD(bytes, code, words)                                                                 \
    do {                                                                                        \
        char err[256] = "";                                                                     \
        cr_assert_eq(open_bytes(bytes, sizeof bytes - 1, err, sizeof err), code, "%s", err);   \
        cr_assert(strstr(err, words), "error '%s' should say '%s'", err, words);                \
    } while (0)

Test(sn_wire_batch, hostile_batches_are_refused_whole)
{
    BAD("\xc1\x01\x12\x81\x01\x91\xc4\x04\xc1\x01\x12\x80", SN_EPROTO, "BATCH inside a BATCH");
    BAD("\xc1\x01\x12\x81\x01\x91\xa4\xc1\x01\x06\x80", SN_EPROTO, "a bin expected");
    BAD("\xc1\x01\x12\x81\x01\x91\xc4\x03\xc1\x01\x06", SN_EPROTO, "not a frame");
    BAD("\xc1\x01\x12\x81\x01\x91\xc4\x04\xc1\x02\x06\x80", SN_EPROTO, "not a frame");
    BAD("\xc1\x01\x12\x81\x01\xdd\xff\xff\xff\xff", SN_EPROTO, "cannot fit");
    BAD("\xc1\x01\x12\xdf\xff\xff\xff\xff", SN_EPROTO, "cannot fit");
    BAD("\xc1\x01\x12\x82\x01\x90\x01\x90", SN_EPROTO, "given twice");
    BAD("\xc1\x01\x12\x81\xa1x\x90", SN_EPROTO, "field number");
    BAD("\xc1\x01\x12\x81\x01\x90\x00", SN_EPROTO, "after the body");
    BAD("\xc1\x01\x12\x81\x01\x91\xc4\x08\xc1\x01\x06\x80", SN_EPROTO, "a bin expected");
    BAD("\xc1\x01\x12\x91", SN_EPROTO, "not a map");
    BAD("\xc1\x01\x06\x80", SN_EPROTO, "not a BATCH");
    BAD("\xc1\x01\x12\x81\x05\x91\x91\x91\x91\x91\x91\x90", SN_ELIMIT, "nested too deep");
    /* over the frame limit: refused before reading it */
    char big[2048] = "\xc1\x01\x12\x81\x01\x90";
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    lim.max_frame = 1024;
    sn_wire_batch_reader r;
    char err[256] = "";
    cr_assert_eq(sn_wire_batch_open(big, sizeof big, &lim, &r, err, sizeof err), SN_ELIMIT);
    cr_assert(strstr(err, "frame limit"), "%s", err);
}

Test(sn_wire_batch, unknown_fields_are_skipped)
{
    const char ok[] = "\xc1\x01\x12\x82\x07\x92\x01\x02\x01\x91\xc4\x04\xc1\x01\x06\x80";
    sn_wire_batch_reader r;
    char err[256] = "";
    cr_assert_eq(sn_wire_batch_open(ok, sizeof ok - 1, NULL, &r, err, sizeof err), SN_OK, "%s",
                 err);
    const char *f;
    size_t l;
    cr_assert(sn_wire_batch_next(&r, &f, &l));
    cr_assert_eq(l, 4);
    cr_assert_not(sn_wire_batch_next(&r, &f, &l));
}
