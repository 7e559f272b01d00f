/* Fuzz target for sn_wire_decode: any input, with the default limits and with tight ones.
 * A frame that decodes must encode again, decode to an equal frame, and re-encode to the same
 * bytes (the encoder's output is canonical). A BATCH that opens hands out frames that decode
 * or fail cleanly, and packing them again gives a batch that opens to the same frames. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_wire.h"
#include "sn_wire_batch.h"

static void check(int cond, const char *what, const char *err)
{
    if (!cond) {
        fprintf(stderr, "fuzz_wire: %s (%s)\n", what, err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sn_wire_limits lims[2];
    sn_wire_limits_init(&lims[0]);
    sn_wire_limits_init(&lims[1]);
    lims[1].max_string = 8;
    lims[1].max_members = 2;
    lims[1].max_stages = 2;
    lims[1].max_payload = 16;
    lims[1].max_depth = SN_WIRE_DEPTH_MIN;
    lims[1].max_frame = 256;
    char err[256] = "";
    sn_buf b1, b2;
    sn_buf_init(&b1);
    sn_buf_init(&b2);
    for (int i = 0; i < 2; i++) {
        const sn_wire_limits *lim = &lims[i];
        sn_wire_frame f, g;
        int version;
        sn_wire_kind kind;
        int peek = sn_wire_peek((const char *)data, size, &version, &kind);
        int rc = sn_wire_decode((const char *)data, size, lim, &f, err, sizeof err);
        check(rc == SN_OK || rc == SN_EPROTO || rc == SN_ELIMIT || rc == SN_ENOTSUP,
              "unexpected decode error", err);
        { /* the cluster's decode (one pass into a scratch, MESSAGE read directly) agrees */
            static _Alignas(16) char scratch[4096];
            char err2[256] = "";
            sn_wire_frame h;
            int rc2 = sn_wire_decode_in((const char *)data, size, lim, &h, scratch,
                                        size % 2 ? 64 : sizeof scratch, err2, sizeof err2);
            check(rc2 == rc && (rc != SN_OK ? strcmp(err, err2) == 0 : sn_wire_equal(&f, &h)),
                  "decode_in disagrees with decode", err2);
            sn_wire_frame_fini(&h);
        }
        if (rc != SN_OK) {
            check(f.arena == NULL, "a failed decode kept memory", err);
            continue;
        }
        check(peek == SN_OK && kind == f.kind && version == SN_WIRE_VERSION,
              "peek disagrees with decode", err);
        sn_buf_reset(&b1);
        rc = sn_wire_encode(&f, lim, &b1, err, sizeof err);
        check(rc == SN_OK, "a decoded frame did not encode", err);
        sn_buf_reset(&b2);
        check(sn_wire_encode_generic(&f, lim, &b2, err, sizeof err) == SN_OK &&
                  b2.len == b1.len && memcmp(b1.data, b2.data, b1.len) == 0,
              "sn_wire_encode and the field tables wrote different bytes", err);
        check(b1.len <= size, "re-encoding grew the frame", err);
        rc = sn_wire_decode(b1.data, b1.len, lim, &g, err, sizeof err);
        check(rc == SN_OK, "a re-encoded frame did not decode", err);
        check(sn_wire_equal(&f, &g), "decode(encode(decode(x))) != decode(x)", err);
        sn_buf_reset(&b2);
        rc = sn_wire_encode(&g, lim, &b2, err, sizeof err);
        check(rc == SN_OK && b2.len == b1.len && memcmp(b1.data, b2.data, b1.len) == 0,
              "encoding is not canonical", err);
        sn_wire_frame_fini(&g);
        sn_wire_frame_fini(&f);
    }
    sn_buf_fini(&b1);
    sn_buf_fini(&b2);
    for (int i = 0; i < 2; i++) {
        sn_wire_batch_reader r, r2;
        if (sn_wire_batch_open((const char *)data, size, &lims[i], &r, err, sizeof err) != SN_OK)
            continue;
        sn_wire_batch again;
        sn_wire_batch_init(&again);
        const char *fr, *fr2;
        size_t fl, fl2;
        while (sn_wire_batch_next(&r, &fr, &fl)) {
            check(fr >= (const char *)data && fr + fl <= (const char *)data + size,
                  "a batch entry outside the input", "");
            sn_wire_frame f;
            int rc = sn_wire_decode(fr, fl, &lims[i], &f, err, sizeof err);
            check(rc == SN_OK || rc == SN_EPROTO || rc == SN_ELIMIT || rc == SN_ENOTSUP,
                  "unexpected decode error in a batch", err);
            if (rc == SN_OK)
                sn_wire_frame_fini(&f);
            check(sn_wire_batch_add(&again, fr, fl) == SN_OK, "batch add failed", "");
        }
        const char *out;
        size_t olen;
        sn_wire_batch_finish(&again, &out, &olen);
        if (again.count >= 2) {
            check(olen <= size, "re-packing grew the batch", "");
            check(sn_wire_batch_open(out, olen, &lims[i], &r2, err, sizeof err) == SN_OK,
                  "a re-packed batch did not open", err);
            sn_wire_batch_open((const char *)data, size, &lims[i], &r, err, sizeof err);
            while (sn_wire_batch_next(&r, &fr, &fl)) {
                check(sn_wire_batch_next(&r2, &fr2, &fl2) && fl == fl2 &&
                          memcmp(fr, fr2, fl) == 0,
                      "a re-packed batch holds other frames", "");
            }
        }
        sn_wire_batch_fini(&again);
    }
    return 0;
}
