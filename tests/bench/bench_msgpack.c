/* bench_msgpack: the one MessagePack layer, sn_mpack (hand-written), against msgpack-c, the
 * library the project links, measured in the same run on the same data (docs/msgpack.md).
 * Two messages: a typical snapshot (version byte, then [int, short string, small table]) and a
 * typical wire frame (the MESSAGE field map, 64 B payload). For each: pack (sn_mpack into an
 * sn_buf vs msgpack_packer into an msgpack_sbuffer) and unpack + read every value (sn_mpack_read
 * walk vs msgpack_unpack_next into a zone + a walk of the object tree, and vs the streaming
 * msgpack_unpacker). Each figure is the median of RUNS runs with their range, wall time and
 * CPU time (CLOCK_PROCESS_CPUTIME_ID) per message. Last, what a 5-byte hostile input costs each
 * reader before it can say the input is short. */
#include <malloc.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sn_mpack.h"

#define RUNS  7
#define ITERS 400000L

static void die(const char *what)
{
    fprintf(stderr, "bench_msgpack: %s\n", what);
    exit(1);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct ctx {
    sn_buf buf;           /* sn_mpack output */
    msgpack_sbuffer sbuf; /* msgpack-c output */
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacker upk;
    const char *in; /* what the readers read: the same bytes for both */
    size_t in_len;
    uint64_t sink;
} ctx;

/* ---- the two messages, as data ---------------------------------------------------------- */

static const char *const rec_keys[] = {"from", "to", "seq", "ts", "data"};
static const char payload64[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

typedef struct addr {
    const char *node;
    uint64_t incarnation, actor;
    const char *stage;
} addr;
static const addr src_addr = {"node-a", 1732600000123456ULL, 1001, "chat"};
static const addr dst_addr = {"node-b", 0, 0, "main"};

/* ---- sn_mpack ------------------------------------------------------------------------------ */

static void mp_snapshot(sn_buf *b)
{
    int rc = sn_mpack_put_raw(b, "\x01", 1); /* snapshot version */
    rc |= sn_mpack_put_array(b, 3);
    rc |= sn_mpack_put_int(b, 42);
    rc |= sn_mpack_put_str(b, "hello world", 11);
    rc |= sn_mpack_put_map(b, 5);
    rc |= sn_mpack_put_str(b, rec_keys[0], 4);
    rc |= sn_mpack_put_str(b, "alice", 5);
    rc |= sn_mpack_put_str(b, rec_keys[1], 2);
    rc |= sn_mpack_put_str(b, "bob", 3);
    rc |= sn_mpack_put_str(b, rec_keys[2], 3);
    rc |= sn_mpack_put_int(b, 42);
    rc |= sn_mpack_put_str(b, rec_keys[3], 2);
    rc |= sn_mpack_put_double(b, 1234.5);
    rc |= sn_mpack_put_str(b, rec_keys[4], 4);
    rc |= sn_mpack_put_array(b, 10);
    for (int i = 1; i <= 10; i++)
        rc |= sn_mpack_put_int(b, i);
    if (rc) die("sn_mpack: out of memory");
}

static int mp_addr(sn_buf *b, const addr *a)
{
    int rc = sn_mpack_put_map(b, 4);
    rc |= sn_mpack_put_uint(b, 1);
    rc |= sn_mpack_put_str(b, a->node, strlen(a->node));
    rc |= sn_mpack_put_uint(b, 2);
    rc |= sn_mpack_put_uint(b, a->incarnation);
    rc |= sn_mpack_put_uint(b, 3);
    rc |= sn_mpack_put_uint(b, a->actor);
    rc |= sn_mpack_put_uint(b, 4);
    rc |= sn_mpack_put_str(b, a->stage, strlen(a->stage));
    return rc;
}

static void mp_frame(sn_buf *b)
{
    int rc = sn_mpack_put_raw(b, "\xc1\x01\x06", 3); /* wire header: magic, version, kind */
    rc |= sn_mpack_put_map(b, 9);
    rc |= sn_mpack_put_uint(b, 1);
    rc |= mp_addr(b, &src_addr);
    rc |= sn_mpack_put_uint(b, 2);
    rc |= mp_addr(b, &dst_addr);
    rc |= sn_mpack_put_uint(b, 3);
    rc |= sn_mpack_put_uint(b, 1);
    rc |= sn_mpack_put_uint(b, 4);
    rc |= sn_mpack_put_str(b, "main:hello", 10);
    rc |= sn_mpack_put_uint(b, 5);
    rc |= sn_mpack_put_str(b, "on_reply", 8);
    rc |= sn_mpack_put_uint(b, 6);
    rc |= sn_mpack_put_uint(b, 5);
    rc |= sn_mpack_put_uint(b, 7);
    rc |= sn_mpack_put_uint(b, 1234567);
    rc |= sn_mpack_put_uint(b, 8);
    rc |= sn_mpack_put_uint(b, 0);
    rc |= sn_mpack_put_uint(b, 9);
    rc |= sn_mpack_put_bin(b, payload64, sizeof payload64);
    if (rc) die("sn_mpack: out of memory");
}

/* Reads every value, summing what it sees (so nothing is optimized away). */
static uint64_t mp_walk(const uint8_t **p, const uint8_t *end, int depth)
{
    sn_mpack_item it;
    if (depth > 16 || sn_mpack_read(p, end, &it) != SN_MPACK_OK) die("sn_mpack: bad input");
    switch (it.type) {
    case SN_MPACK_UINT:
    case SN_MPACK_INT:
    case SN_MPACK_BOOL:
        return it.v.u;
    case SN_MPACK_DOUBLE:
        return (uint64_t)it.v.d;
    case SN_MPACK_FLOAT:
        return (uint64_t)it.v.f;
    case SN_MPACK_STR:
    case SN_MPACK_BIN:
        return it.v.u + (it.v.u ? it.data[0] : 0);
    case SN_MPACK_ARRAY:
    case SN_MPACK_MAP: {
        uint64_t n = it.v.u * (it.type == SN_MPACK_MAP ? 2 : 1), acc = 0;
        if (n > (uint64_t)(end - *p)) die("sn_mpack: count cannot fit");
        for (uint64_t i = 0; i < n; i++)
            acc += mp_walk(p, end, depth + 1);
        return acc;
    }
    default:
        return 1;
    }
}

/* ---- msgpack-c ----------------------------------------------------------------------------- */

static void pk_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pk_snapshot(msgpack_packer *pk)
{
    msgpack_pack_str_body(pk, "\x01", 1); /* the version byte, raw */
    msgpack_pack_array(pk, 3);
    msgpack_pack_int64(pk, 42);
    pk_str(pk, "hello world", 11);
    msgpack_pack_map(pk, 5);
    pk_str(pk, rec_keys[0], 4);
    pk_str(pk, "alice", 5);
    pk_str(pk, rec_keys[1], 2);
    pk_str(pk, "bob", 3);
    pk_str(pk, rec_keys[2], 3);
    msgpack_pack_int64(pk, 42);
    pk_str(pk, rec_keys[3], 2);
    msgpack_pack_double(pk, 1234.5);
    pk_str(pk, rec_keys[4], 4);
    msgpack_pack_array(pk, 10);
    for (int i = 1; i <= 10; i++)
        msgpack_pack_int64(pk, i);
}

static void pk_addr(msgpack_packer *pk, const addr *a)
{
    msgpack_pack_map(pk, 4);
    msgpack_pack_uint64(pk, 1);
    pk_str(pk, a->node, strlen(a->node));
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_uint64(pk, a->incarnation);
    msgpack_pack_uint64(pk, 3);
    msgpack_pack_uint64(pk, a->actor);
    msgpack_pack_uint64(pk, 4);
    pk_str(pk, a->stage, strlen(a->stage));
}

static void pk_frame(msgpack_packer *pk)
{
    msgpack_pack_str_body(pk, "\xc1\x01\x06", 3);
    msgpack_pack_map(pk, 9);
    msgpack_pack_uint64(pk, 1);
    pk_addr(pk, &src_addr);
    msgpack_pack_uint64(pk, 2);
    pk_addr(pk, &dst_addr);
    msgpack_pack_uint64(pk, 3);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_uint64(pk, 4);
    pk_str(pk, "main:hello", 10);
    msgpack_pack_uint64(pk, 5);
    pk_str(pk, "on_reply", 8);
    msgpack_pack_uint64(pk, 6);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_uint64(pk, 7);
    msgpack_pack_uint64(pk, 1234567);
    msgpack_pack_uint64(pk, 8);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_uint64(pk, 9);
    msgpack_pack_bin(pk, sizeof payload64);
    msgpack_pack_bin_body(pk, payload64, sizeof payload64);
}

static uint64_t pk_walk(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return o->via.u64;
    case MSGPACK_OBJECT_BOOLEAN:
        return o->via.boolean;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return (uint64_t)o->via.f64;
    case MSGPACK_OBJECT_STR:
        return o->via.str.size + (o->via.str.size ? (unsigned char)o->via.str.ptr[0] : 0);
    case MSGPACK_OBJECT_BIN:
        return o->via.bin.size + (o->via.bin.size ? (unsigned char)o->via.bin.ptr[0] : 0);
    case MSGPACK_OBJECT_ARRAY: {
        uint64_t acc = 0;
        for (uint32_t i = 0; i < o->via.array.size; i++)
            acc += pk_walk(&o->via.array.ptr[i]);
        return acc;
    }
    case MSGPACK_OBJECT_MAP: {
        uint64_t acc = 0;
        for (uint32_t i = 0; i < o->via.map.size; i++)
            acc += pk_walk(&o->via.map.ptr[i].key) + pk_walk(&o->via.map.ptr[i].val);
        return acc;
    }
    default:
        return 1;
    }
}

/* ---- the runs ------------------------------------------------------------------------------ */

typedef enum msg { SNAPSHOT, FRAME } msg;
typedef struct job {
    ctx *c;
    msg m;
    size_t skip; /* bytes before the MessagePack: snapshot version 1, wire header 3 */
} job;

static void run_mp_pack(job *j, long iters)
{
    ctx *c = j->c;
    for (long i = 0; i < iters; i++) {
        sn_buf_reset(&c->buf);
        if (j->m == SNAPSHOT)
            mp_snapshot(&c->buf);
        else
            mp_frame(&c->buf);
        c->sink += c->buf.len;
    }
}

static void run_pk_pack(job *j, long iters)
{
    ctx *c = j->c;
    for (long i = 0; i < iters; i++) {
        msgpack_sbuffer_clear(&c->sbuf);
        if (j->m == SNAPSHOT)
            pk_snapshot(&c->pk);
        else
            pk_frame(&c->pk);
        c->sink += c->sbuf.size;
    }
}

static void run_mp_read(job *j, long iters)
{
    ctx *c = j->c;
    const uint8_t *end = (const uint8_t *)c->in + c->in_len;
    for (long i = 0; i < iters; i++) {
        const uint8_t *p = (const uint8_t *)c->in + j->skip;
        c->sink += mp_walk(&p, end, 0);
        if (p != end) die("sn_mpack: trailing bytes");
    }
}

static void run_pk_read(job *j, long iters)
{
    ctx *c = j->c;
    for (long i = 0; i < iters; i++) {
        size_t off = j->skip;
        if (msgpack_unpack_next(&c->up, c->in, c->in_len, &off) != MSGPACK_UNPACK_SUCCESS ||
            off != c->in_len)
            die("msgpack-c: unpack failed");
        c->sink += pk_walk(&c->up.data);
    }
}

/* The streaming reader: copy into its buffer, then next (what a socket reader would do). */
static void run_pk_stream(job *j, long iters)
{
    ctx *c = j->c;
    size_t n = c->in_len - j->skip;
    for (long i = 0; i < iters; i++) {
        if (!msgpack_unpacker_reserve_buffer(&c->upk, n)) die("msgpack-c: out of memory");
        memcpy(msgpack_unpacker_buffer(&c->upk), c->in + j->skip, n);
        msgpack_unpacker_buffer_consumed(&c->upk, n);
        if (msgpack_unpacker_next(&c->upk, &c->up) != MSGPACK_UNPACK_SUCCESS)
            die("msgpack-c: unpacker failed");
        c->sink += pk_walk(&c->up.data);
    }
}

typedef struct stats {
    double med, lo, hi, cpu; /* ns per message: wall median, range, CPU median */
} stats;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static stats measure(void (*fn)(job *, long), job *j)
{
    double wall[RUNS], cpu[RUNS];
    fn(j, ITERS / 10); /* warm the buffers and caches */
    for (int r = 0; r < RUNS; r++) {
        double w0 = bench_now(), c0 = cpu_now();
        fn(j, ITERS);
        wall[r] = (bench_now() - w0) / ITERS * 1e9;
        cpu[r] = (cpu_now() - c0) / ITERS * 1e9;
    }
    qsort(wall, RUNS, sizeof wall[0], cmp_double);
    qsort(cpu, RUNS, sizeof cpu[0], cmp_double);
    return (stats){wall[RUNS / 2], wall[0], wall[RUNS - 1], cpu[RUNS / 2]};
}

static void row(const char *what, const char *base_name, stats ours, stats base)
{
    char name[384];
    snprintf(name, sizeof name,
             "%s: sn_mpack vs %s; median of %d runs (range %.0f-%.0f vs %.0f-%.0f ns; CPU %.0f vs "
             "%.0f ns)",
             what, base_name, RUNS, ours.lo, ours.hi, base.lo, base.hi, ours.cpu, base.cpu);
    bench_row("msgpack", name, ours.med, base.med, "ns", 1.0, 1);
}

static void bench_msg(ctx *c, msg m, const char *label)
{
    job j = {c, m, m == SNAPSHOT ? 1 : 3};
    /* Both packers must write the same bytes, so the readers read the same input. */
    sn_buf_reset(&c->buf);
    msgpack_sbuffer_clear(&c->sbuf);
    if (m == SNAPSHOT) {
        mp_snapshot(&c->buf);
        pk_snapshot(&c->pk);
    } else {
        mp_frame(&c->buf);
        pk_frame(&c->pk);
    }
    if (c->buf.len != c->sbuf.size || memcmp(c->buf.data, c->sbuf.data, c->buf.len) != 0)
        die("sn_mpack and msgpack-c wrote different bytes");
    c->in = c->sbuf.data;
    c->in_len = c->sbuf.size;
    char what[128];
    snprintf(what, sizeof what, "%s (%zu B) pack", label, c->in_len);
    row(what, "msgpack_packer into an sbuffer", measure(run_mp_pack, &j), measure(run_pk_pack, &j));
    snprintf(what, sizeof what, "%s (%zu B) unpack + read every value", label, c->in_len);
    stats ours = measure(run_mp_read, &j);
    row(what, "msgpack_unpack_next + object walk", ours, measure(run_pk_read, &j));
    row(what, "msgpack_unpacker (streaming) + object walk", ours, measure(run_pk_stream, &j));
    c->in = NULL;
}

/* A 5-byte array header announcing 2^24 elements, with none following. */
static void bench_hostile(ctx *c)
{
    static const char bomb[] = "\xdd\x01\x00\x00\x00";
    struct mallinfo2 before = mallinfo2();
    double t0 = bench_now();
    size_t off = 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    msgpack_unpack_return r = msgpack_unpack_next(&up, bomb, 5, &off);
    struct mallinfo2 after = mallinfo2();
    double t_pk = bench_now() - t0;
    msgpack_unpacked_destroy(&up);
    size_t pk_bytes = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);

    before = mallinfo2();
    t0 = bench_now();
    const uint8_t *p = (const uint8_t *)bomb, *end = p + 5;
    sn_mpack_item it;
    int refused = sn_mpack_read(&p, end, &it) == SN_MPACK_OK && it.v.u > (uint64_t)(end - p);
    double t_mp = bench_now() - t0;
    after = mallinfo2();
    size_t mp_bytes = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    if (!refused) die("sn_mpack: the bomb was not seen");
    char name[256];
    snprintf(name, sizeof name,
             "5-byte hostile input (array of 2^24 elements, none present): heap bytes the reader "
             "allocates before it answers (msgpack-c answered %d after %.0f us; sn_mpack refuses "
             "the count in %.0f ns)",
             (int)r, t_pk * 1e6, t_mp * 1e9);
    bench_row("msgpack", name, (double)mp_bytes, (double)pk_bytes, "B", 0, 1);
    c->sink += off;
}

int main(void)
{
    ctx c;
    memset(&c, 0, sizeof c);
    sn_buf_init(&c.buf);
    msgpack_sbuffer_init(&c.sbuf);
    msgpack_packer_init(&c.pk, &c.sbuf, msgpack_sbuffer_write);
    msgpack_unpacked_init(&c.up);
    if (!msgpack_unpacker_init(&c.upk, 4096)) die("msgpack-c: out of memory");
    bench_msg(&c, SNAPSHOT, "snapshot [int, short string, 5-field table]");
    bench_msg(&c, FRAME, "wire MESSAGE frame, 64 B payload");
    bench_hostile(&c);
    msgpack_unpacker_destroy(&c.upk);
    msgpack_unpacked_destroy(&c.up);
    msgpack_sbuffer_destroy(&c.sbuf);
    sn_buf_fini(&c.buf);
    if (c.sink == 42) printf("\n");
    return 0;
}
