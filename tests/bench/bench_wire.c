/* bench_wire: the wire codec against a raw msgpack-c baseline, measured in the same run.
 * One MESSAGE frame (two addresses, ids, session, seq, flags, payload) with a 64 B and a 1 KiB
 * payload: sn_wire_encode + sn_wire_decode (validated, strings copied and NUL-terminated) vs
 * msgpack_pack_* of the same field map into an sbuffer + msgpack_unpack_next + a walk that
 * reads every field into locals (no validation, strings left in place). ns per frame. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sn_wire.h"

typedef struct ctx {
    sn_wire_frame frame;
    sn_buf buf;
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_unpacked up;
    uint64_t sink; /* keeps the baseline's reads alive */
} ctx;

static void die(const char *what)
{
    fprintf(stderr, "bench_wire: %s\n", what);
    exit(1);
}

static double run_wire(void *arg, long iters)
{
    ctx *c = arg;
    char err[128];
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        sn_wire_frame g;
        sn_buf_reset(&c->buf);
        if (sn_wire_encode(&c->frame, NULL, &c->buf, err, sizeof err) ||
            sn_wire_decode(c->buf.data, c->buf.len, NULL, &g, err, sizeof err))
            die(err);
        c->sink += g.u.message.seq + g.u.message.payload.len;
        sn_wire_frame_fini(&g);
    }
    return bench_now() - t0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_addr(msgpack_packer *pk, const sn_wire_addr *a)
{
    msgpack_pack_map(pk, 4);
    msgpack_pack_uint8(pk, 1);
    pack_str(pk, a->node);
    msgpack_pack_uint8(pk, 2);
    msgpack_pack_uint64(pk, a->incarnation);
    msgpack_pack_uint8(pk, 3);
    msgpack_pack_uint64(pk, a->actor);
    msgpack_pack_uint8(pk, 4);
    pack_str(pk, a->stage);
}

/* Reads a map of field -> value the way a hand-written msgpack-c consumer would. */
static uint64_t walk(const msgpack_object *o)
{
    uint64_t acc = 0;
    if (o->type != MSGPACK_OBJECT_MAP) die("baseline: not a map");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *v = &o->via.map.ptr[i].val;
        switch (v->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            acc += v->via.u64;
            break;
        case MSGPACK_OBJECT_STR:
            acc += v->via.str.size + (unsigned char)(v->via.str.size ? v->via.str.ptr[0] : 0);
            break;
        case MSGPACK_OBJECT_BIN:
            acc += v->via.bin.size;
            break;
        case MSGPACK_OBJECT_MAP:
            acc += walk(v);
            break;
        default:
            die("baseline: unexpected type");
        }
    }
    return acc;
}

static double run_msgpack(void *arg, long iters)
{
    ctx *c = arg;
    const sn_wire_message *m = &c->frame.u.message;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        msgpack_sbuffer_clear(&c->sbuf);
        msgpack_packer *pk = &c->pk;
        msgpack_pack_map(pk, 9);
        msgpack_pack_uint8(pk, 1);
        pack_addr(pk, &m->src);
        msgpack_pack_uint8(pk, 2);
        pack_addr(pk, &m->dst);
        msgpack_pack_uint8(pk, 3);
        msgpack_pack_uint32(pk, (uint32_t)m->mode);
        msgpack_pack_uint8(pk, 4);
        pack_str(pk, m->msg_id);
        msgpack_pack_uint8(pk, 5);
        pack_str(pk, m->reply_id);
        msgpack_pack_uint8(pk, 6);
        msgpack_pack_uint64(pk, m->session);
        msgpack_pack_uint8(pk, 7);
        msgpack_pack_uint64(pk, m->seq);
        msgpack_pack_uint8(pk, 8);
        msgpack_pack_uint32(pk, m->flags);
        msgpack_pack_uint8(pk, 9);
        msgpack_pack_bin(pk, m->payload.len);
        msgpack_pack_bin_body(pk, m->payload.data, m->payload.len);
        size_t off = 0;
        if (msgpack_unpack_next(&c->up, c->sbuf.data, c->sbuf.size, &off) != MSGPACK_UNPACK_SUCCESS)
            die("baseline: unpack failed");
        c->sink += walk(&c->up.data);
    }
    return bench_now() - t0;
}

static void bench_payload(size_t n, const char *name)
{
    ctx c;
    memset(&c, 0, sizeof c);
    char *payload = malloc(n);
    memset(payload, 0x5a, n);
    sn_wire_frame_init(&c.frame, SN_WIRE_MESSAGE);
    c.frame.u.message = (sn_wire_message){{"node-a", 1732600000123456ULL, 1001, "chat"},
                                          {"node-b", 0, 0, "main"},
                                          SN_WIRE_ALL,
                                          "main:hello",
                                          "on_reply",
                                          5,
                                          1234567,
                                          0,
                                          {payload, n}};
    sn_buf_init(&c.buf);
    msgpack_sbuffer_init(&c.sbuf);
    msgpack_packer_init(&c.pk, &c.sbuf, msgpack_sbuffer_write);
    msgpack_unpacked_init(&c.up);
    long iters = 200000;
    run_wire(&c, 1000); /* warm the buffers */
    run_msgpack(&c, 1000);
    double wire = bench_best(run_wire, &c, iters, 5);
    double raw = bench_best(run_msgpack, &c, iters, 5);
    bench_row("wire", name, wire * 1e9, raw * 1e9, "ns", 1.5, 1);
    msgpack_unpacked_destroy(&c.up);
    msgpack_sbuffer_destroy(&c.sbuf);
    sn_buf_fini(&c.buf);
    free(payload);
    if (c.sink == 42) printf("\n");
}

int main(void)
{
    bench_payload(64, "MESSAGE encode+decode, 64 B payload (vs raw msgpack-c pack+unpack)");
    bench_payload(1024, "MESSAGE encode+decode, 1 KiB payload (vs raw msgpack-c pack+unpack)");
    return 0;
}
