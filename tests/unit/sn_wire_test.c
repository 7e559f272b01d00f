/* Tests for sn_wire: round trips of every kind, edge values, and hostile input (truncation,
 * bombs, nesting, garbage, limits). Run under ASan+UBSan: every decode must stay in bounds. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_wire.h"

static const sn_wire_member sample_members[] = {
    {"alpha", "tcp://10.0.0.1:7400", "10.0.0.1:8080", 1, SN_WIRE_ALIVE, 7},
    {"beta", "tcp://10.0.0.2:7400", "", UINT64_MAX, SN_WIRE_SUSPECT, UINT64_MAX},
    {"gamma", "", "", 0, SN_WIRE_DOWN, 0},
    {"d", "tcp://[::1]:7400", "", 3, SN_WIRE_LEFT, 1},
};
static const sn_wire_stage sample_stages[] = {{"main", 1}, {"chat", UINT32_MAX}, {"x", 0}};
static const char sample_payload[] = "\x91\xa5hello\x00\xff";

static const sn_wire_addr sample_addr = {"node-a", 42, 1001, "chat"};

/* A frame of `kind` with every field that kind carries set to something non-trivial. */
static void sample(sn_wire_kind kind, sn_wire_frame *f)
{
    sn_wire_frame_init(f, kind);
    sn_wire_bytes pl = {sample_payload, sizeof sample_payload - 1};
    switch (kind) {
    case SN_WIRE_HELLO:
    case SN_WIRE_WELCOME:
        f->u.hello = (sn_wire_hello){"stage",
                                     "node-a",
                                     0x123456789abcdefULL,
                                     SN_WIRE_VERSION,
                                     "tcp://127.0.0.1:7401",
                                     "127.0.0.1:8080",
                                     SN_WIRE_HELLO_WANTS_BYTECODE | SN_WIRE_HELLO_CODE_CACHE,
                                     "stage-node 0.1.0",
                                     NULL,
                                     0};
        if (kind == SN_WIRE_WELCOME) {
            f->u.hello.members = sample_members;
            f->u.hello.nmembers = 4;
        }
        break;
    case SN_WIRE_HEARTBEAT:
        f->u.heartbeat = (sn_wire_heartbeat){"node-a", 9, 100000, 0xdeadbeefcafeULL, 3};
        break;
    case SN_WIRE_GOSSIP:
        f->u.gossip = (sn_wire_gossip){"node-a", 9, sample_members, 4};
        break;
    case SN_WIRE_REGISTRY:
        f->u.registry = (sn_wire_registry){"node-a", 9, 77, sample_stages, 3};
        break;
    case SN_WIRE_MESSAGE:
        f->u.message = (sn_wire_message){
            sample_addr, {"node-b", 0, 0, "main"}, SN_WIRE_ALL, "main:hello", "on_reply", 5,
            1234567,     SN_WIRE_MSG_HASHREF,      pl};
        break;
    case SN_WIRE_REPLY:
        f->u.reply = (sn_wire_reply){sample_addr,
                                     {"node-b", 3, 4, ""},
                                     "on_reply",
                                     5,
                                     SN_WIRE_FAILED,
                                     "boom: attempt to index nil",
                                     88,
                                     0,
                                     pl};
        break;
    case SN_WIRE_ERROR:
        f->u.error = (sn_wire_error){SN_WIRE_E_GAP, "gap: expected 5, got 7", 7, 0};
        break;
    case SN_WIRE_LEAVE:
        f->u.leave = (sn_wire_leave){"node-a", 9};
        break;
    case SN_WIRE_STATUS_REQ:
        f->u.status = (sn_wire_status_frame){"node-a", 9, 31, {NULL, 0}};
        break;
    case SN_WIRE_STATUS:
        f->u.status = (sn_wire_status_frame){"node-b", 10, 31, {"{\"ok\":true}", 11}};
        break;
    case SN_WIRE_LOCK_ACQUIRE:
    case SN_WIRE_LOCK_GRANT:
    case SN_WIRE_LOCK_EXTEND:
    case SN_WIRE_LOCK_RELEASE:
    case SN_WIRE_LOCK_DENY:
        f->u.lock = (sn_wire_lock){"db:users", sample_addr,    "on_locked",  5000, 17,
                                   3,          SN_WIRE_E_BUSY, "queue full", pl};
        break;
    case SN_WIRE_CODE_MISS:
        for (int i = 0; i < SN_WIRE_HASH_LEN; i++)
            f->u.code_miss.hash[i] = (uint8_t)(0xf0 + i);
        f->u.code_miss.seq = 12;
        break;
    }
}

static size_t encode_ok(const sn_wire_frame *f, sn_buf *b)
{
    char err[256] = "";
    sn_buf_reset(b);
    int rc = sn_wire_encode(f, NULL, b, err, sizeof err);
    cr_assert_eq(rc, SN_OK, "encode %s: %s", sn_wire_kind_name(f->kind), err);
    return b->len;
}

/* Decodes from an exactly sized heap copy, so ASan sees any read past the end. The copy lives
 * until the next call (a decoded frame's payloads point into it). */
static char *last_copy;

static int decode_copy(const void *data, size_t len, const sn_wire_limits *lim, sn_wire_frame *f,
                       char *err, size_t errlen)
{
    free(last_copy);
    last_copy = malloc(len ? len : 1);
    cr_assert(last_copy);
    memcpy(last_copy, data, len);
    /* The cluster's one-pass decode into a scratch (and its own reader of a canonical
     * MESSAGE) must give the same result for every frame these tests make, hostile or not:
     * the same code, the same words, the same values. */
    static _Alignas(16) char scratch[4096];
    char err2[512] = "";
    sn_wire_frame h;
    int rc2 = sn_wire_decode_in(last_copy, len, lim, &h, scratch, sizeof scratch, err2,
                                errlen < sizeof err2 ? errlen : sizeof err2);
    int rc = sn_wire_decode(last_copy, len, lim, f, err, errlen);
    cr_assert_eq(rc, rc2, "decode %d, decode_in %d (%s)", rc, rc2, err2);
    if (rc == SN_OK)
        cr_assert(sn_wire_equal(f, &h), "decode_in read another frame");
    else if (err && errlen)
        cr_assert_str_eq(err, err2);
    sn_wire_frame_fini(&h);
    return rc;
}

static void roundtrip(const sn_wire_frame *f)
{
    sn_buf b;
    sn_buf_init(&b);
    size_t n = encode_ok(f, &b);
    cr_assert_eq((uint8_t)b.data[0], SN_WIRE_MAGIC);
    cr_assert_eq((uint8_t)b.data[1], SN_WIRE_VERSION);
    cr_assert_eq((uint8_t)b.data[2], (uint8_t)f->kind);
    sn_wire_frame g;
    char err[256] = "";
    int rc = sn_wire_decode(b.data, n, NULL, &g, err, sizeof err);
    cr_assert_eq(rc, SN_OK, "decode %s: %s", sn_wire_kind_name(f->kind), err);
    cr_assert(sn_wire_equal(f, &g), "%s did not round-trip", sn_wire_kind_name(f->kind));
    sn_wire_frame_fini(&g);
    sn_buf_fini(&b);
}

Test(sn_wire, roundtrip_every_kind)
{
    for (int k = 1; k <= SN_WIRE_KIND_LAST; k++) {
        sn_wire_frame f;
        sample((sn_wire_kind)k, &f);
        roundtrip(&f);
        cr_assert_str_neq(sn_wire_kind_name((sn_wire_kind)k), "?");
    }
}

Test(sn_wire, roundtrip_empty_frames)
{
    sn_buf b;
    sn_buf_init(&b);
    for (int k = 1; k <= SN_WIRE_KIND_LAST; k++) {
        sn_wire_frame f, g;
        sn_wire_frame_init(&f, (sn_wire_kind)k);
        size_t n = encode_ok(&f, &b);
        cr_assert_eq(n, 4, "an all-zero frame is header + empty map");
        cr_assert_eq((uint8_t)b.data[3], 0x80);
        cr_assert_eq(sn_wire_decode(b.data, n, NULL, &g, NULL, 0), SN_OK);
        cr_assert(sn_wire_equal(&f, &g));
        cr_assert_null(g.arena, "nothing to allocate");
        if (k == SN_WIRE_MESSAGE) {
            cr_assert_not_null(g.u.message.msg_id, "absent strings decode as \"\"");
            cr_assert_str_eq(g.u.message.src.node, "");
            cr_assert_eq(g.u.message.payload.len, 0);
        }
        sn_wire_frame_fini(&g);
    }
    sn_buf_fini(&b);
}

Test(sn_wire, roundtrip_max_values)
{
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_MESSAGE);
    sn_wire_message *m = &f.u.message;
    m->src = (sn_wire_addr){"", UINT64_MAX, UINT64_MAX, ""};
    m->dst = (sn_wire_addr){"n", UINT64_MAX, 0x80, "s"};
    m->mode = SN_WIRE_REMOTE;
    m->session = UINT64_MAX;
    m->seq = 0xffffffffULL + 1;
    m->flags = UINT32_MAX;
    m->msg_id = "";
    m->payload = (sn_wire_bytes){NULL, 0};
    roundtrip(&f);
    /* every integer width boundary */
    uint64_t vals[] = {0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000ULL};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        sn_wire_frame_init(&f, SN_WIRE_HEARTBEAT);
        f.u.heartbeat = (sn_wire_heartbeat){"h", vals[i], vals[i], vals[i], vals[i]};
        roundtrip(&f);
    }
    /* every string header width: fixstr, str8, str16, str32 */
    size_t lens[] = {31, 32, 255, 256, 65535, SN_WIRE_STRING_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *s = malloc(lens[i] + 1);
        memset(s, 'a' + (int)i, lens[i]);
        s[lens[i]] = 0;
        sn_wire_frame_init(&f, SN_WIRE_ERROR);
        f.u.error.text = s;
        roundtrip(&f);
        free(s);
    }
}

Test(sn_wire, payload_near_the_cap)
{
    size_t n = SN_WIRE_FRAME_MAX - 256;
    char *pl = malloc(n);
    for (size_t i = 0; i < n; i++)
        pl[i] = (char)(i * 31);
    sn_wire_frame f;
    sample(SN_WIRE_MESSAGE, &f);
    f.u.message.payload = (sn_wire_bytes){pl, n};
    sn_buf b;
    sn_buf_init(&b);
    size_t len = encode_ok(&f, &b);
    cr_assert_leq(len, SN_WIRE_FRAME_MAX);
    sn_wire_frame g;
    cr_assert_eq(sn_wire_decode(b.data, len, NULL, &g, NULL, 0), SN_OK);
    cr_assert(sn_wire_equal(&f, &g));
    /* zero-copy: the payload points into the input */
    cr_assert((const char *)g.u.message.payload.data > b.data &&
              (const char *)g.u.message.payload.data < b.data + len);
    sn_wire_frame_fini(&g);

    /* one byte too many for the frame: the encoder refuses, out unchanged */
    f.u.message.payload.len = SN_WIRE_FRAME_MAX;
    char err[256];
    sn_buf_reset(&b);
    memcpy(b.data, "xyz", 3);
    b.len = 3;
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_ELIMIT);
    cr_assert_eq(b.len, 3);
    cr_assert(strstr(err, "payload"), "%s", err);
    sn_buf_fini(&b);
    free(pl);
}

Test(sn_wire, frame_over_the_hard_cap)
{
    size_t n = SN_WIRE_FRAME_MAX + 1;
    char *buf = calloc(1, n);
    buf[0] = (char)SN_WIRE_MAGIC;
    buf[1] = SN_WIRE_VERSION;
    buf[2] = SN_WIRE_MESSAGE;
    sn_wire_frame f;
    char err[256];
    cr_assert_eq(sn_wire_decode(buf, n, NULL, &f, err, sizeof err), SN_ELIMIT);
    cr_assert(strstr(err, "over the limit"), "%s", err);
    /* a smaller configured cap applies too */
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    lim.max_frame = 100;
    cr_assert_eq(sn_wire_decode(buf, 101, &lim, &f, err, sizeof err), SN_ELIMIT);
    free(buf);
}

static sn_wire_member *many_members(uint32_t n)
{
    sn_wire_member *m = calloc(n, sizeof *m);
    static char names[5000][16];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i % 5000], sizeof names[0], "node-%u", i);
        m[i] = (sn_wire_member){names[i % 5000], "tcp://10.1.2.3:7400", "", i, i % 4, i * 3ULL};
    }
    return m;
}

Test(sn_wire, members_at_the_limit)
{
    sn_wire_member *m = many_members(SN_WIRE_MEMBERS_MAX + 1);
    sn_wire_frame f;
    sample(SN_WIRE_WELCOME, &f);
    f.u.hello.members = m;
    f.u.hello.nmembers = SN_WIRE_MEMBERS_MAX;
    roundtrip(&f);
    sample(SN_WIRE_GOSSIP, &f);
    f.u.gossip.members = m;
    f.u.gossip.nmembers = SN_WIRE_MEMBERS_MAX;
    roundtrip(&f);

    /* one more: refused by the encoder, and by a decoder with the default limits */
    f.u.gossip.nmembers = SN_WIRE_MEMBERS_MAX + 1;
    sn_buf b;
    sn_buf_init(&b);
    char err[256];
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_ELIMIT);
    cr_assert_eq(b.len, 0);
    sn_wire_limits big;
    sn_wire_limits_init(&big);
    big.max_members = 10000;
    cr_assert_eq(sn_wire_encode(&f, &big, &b, err, sizeof err), SN_OK);
    sn_wire_frame g;
    cr_assert_eq(sn_wire_decode(b.data, b.len, NULL, &g, err, sizeof err), SN_ELIMIT);
    cr_assert(strstr(err, "GOSSIP.members at byte"), "%s", err);
    cr_assert_eq(sn_wire_decode(b.data, b.len, &big, &g, err, sizeof err), SN_OK);
    sn_wire_frame_fini(&g);
    sn_buf_fini(&b);
    free(m);
}

Test(sn_wire, stages_at_the_limit)
{
    uint32_t n = SN_WIRE_STAGES_MAX;
    sn_wire_stage *s = calloc(n, sizeof *s);
    char *names = malloc((size_t)n * 8);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names + (size_t)i * 8, 8, "s%u", i);
        s[i] = (sn_wire_stage){names + (size_t)i * 8, i};
    }
    sn_wire_frame f;
    sample(SN_WIRE_REGISTRY, &f);
    f.u.registry.stages = s;
    f.u.registry.nstages = n;
    roundtrip(&f);
    free(s);
    free(names);
}

Test(sn_wire, version_mismatch)
{
    sn_wire_frame f;
    sample(SN_WIRE_HELLO, &f);
    sn_buf b;
    sn_buf_init(&b);
    size_t n = encode_ok(&f, &b);
    b.data[1] = 2;
    char err[256];
    sn_wire_frame g;
    cr_assert_eq(sn_wire_decode(b.data, n, NULL, &g, err, sizeof err), SN_ENOTSUP);
    cr_assert(strstr(err, "version 2") && strstr(err, "version 1"), "%s", err);
    /* checked before the size cap and before anything else after the magic */
    cr_assert_eq(sn_wire_decode(b.data, 2, NULL, &g, err, sizeof err), SN_ENOTSUP);
    int v;
    sn_wire_kind k;
    cr_assert_eq(sn_wire_peek(b.data, n, &v, &k), SN_ENOTSUP);
    cr_assert_eq(v, 2);
    b.data[1] = SN_WIRE_VERSION;
    cr_assert_eq(sn_wire_peek(b.data, n, &v, &k), SN_OK);
    cr_assert_eq(v, SN_WIRE_VERSION);
    cr_assert_eq(k, SN_WIRE_HELLO);
    sn_buf_fini(&b);
}

Test(sn_wire, header_errors)
{
    char err[256];
    sn_wire_frame f;
    const char unknown[] = "\xc1\x01\x63\x80";
    cr_assert_eq(sn_wire_decode(unknown, 4, NULL, &f, err, sizeof err), SN_ENOTSUP);
    cr_assert(strstr(err, "unknown frame kind 99"), "%s", err);
    const char zero[] = "\xc1\x01\x00\x80";
    cr_assert_eq(sn_wire_decode(zero, 4, NULL, &f, err, sizeof err), SN_ENOTSUP);
    int v;
    sn_wire_kind k;
    cr_assert_eq(sn_wire_peek(unknown, 4, &v, &k), SN_ENOTSUP);
    cr_assert_eq(k, 99);
    const char magic[] = "\x01\x01\x06\x80";
    cr_assert_eq(sn_wire_decode(magic, 4, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "magic"), "%s", err);
    cr_assert_eq(sn_wire_peek(magic, 4, &v, &k), SN_EPROTO);
    cr_assert_eq(sn_wire_decode("", 0, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert_eq(sn_wire_peek("\xc1\x01", 2, &v, &k), SN_EPROTO);
    const char hdr_only[] = "\xc1\x01\x06";
    cr_assert_eq(sn_wire_decode(hdr_only, 3, NULL, &f, err, sizeof err), SN_EPROTO);
    const char not_map[] = "\xc1\x01\x06\x90";
    cr_assert_eq(sn_wire_decode(not_map, 4, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "map expected"), "%s", err);
    const char trailing[] = "\xc1\x01\x06\x80\x00";
    cr_assert_eq(sn_wire_decode(trailing, 5, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "trailing"), "%s", err);
}

Test(sn_wire, truncation_at_every_offset)
{
    sn_buf b;
    sn_buf_init(&b);
    for (int k = 1; k <= SN_WIRE_KIND_LAST; k++) {
        sn_wire_frame f;
        sample((sn_wire_kind)k, &f);
        size_t n = encode_ok(&f, &b);
        for (size_t cut = 0; cut < n; cut++) {
            sn_wire_frame g;
            char err[256] = "";
            int rc = decode_copy(b.data, cut, NULL, &g, err, sizeof err);
            cr_assert_neq(rc, SN_OK, "%s cut at %zu of %zu decoded", sn_wire_kind_name(f.kind), cut,
                          n);
            cr_assert(rc == SN_EPROTO, "%s cut at %zu: %d %s", sn_wire_kind_name(f.kind), cut, rc,
                      err);
            cr_assert_null(g.arena);
        }
    }
    sn_buf_fini(&b);
}

/* Counts what decode allocates; fails the n-th allocation when fail_at says so. */
typedef struct counting {
    size_t bytes, calls, live;
    long fail_at;
} counting;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counting *c = ud;
    if (nsize == 0) {
        if (ptr) c->live--;
        free(ptr);
        return NULL;
    }
    if (c->fail_at >= 0 && (long)c->calls == c->fail_at) {
        c->calls++;
        return NULL;
    }
    c->calls++;
    c->bytes += nsize;
    if (!ptr) c->live++;
    return realloc(ptr, nsize);
}

static int decode_counted(const char *data, size_t len, counting *c, sn_wire_frame *f, char *err)
{
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    lim.alloc = count_alloc;
    lim.alloc_ud = c;
    return sn_wire_decode(data, len, &lim, f, err, 256);
}

Test(sn_wire, count_bombs_allocate_nothing)
{
    /* map32 of 2^32-1 pairs at the top */
    const char top[] = "\xc1\x01\x06\xdf\xff\xff\xff\xff";
    /* GOSSIP members: array32 of 2^32-1 entries */
    const char members[] = "\xc1\x01\x04\x81\x03\xdd\xff\xff\xff\xff";
    /* array16 of 200 entries in a small frame, under the member limit */
    const char members16[] = "\xc1\x01\x04\x81\x03\xdc\x00\xc8\x81\x01\xa1x";
    /* an unknown field holding an array32 bomb */
    const char unknown[] = "\xc1\x01\x06\x81\x1e\xdd\xff\xff\xff\xff\x00";
    const char *cases[] = {top, members, members16, unknown};
    size_t lens[] = {sizeof top - 1, sizeof members - 1, sizeof members16 - 1, sizeof unknown - 1};
    for (int i = 0; i < 4; i++) {
        counting c = {0, 0, 0, -1};
        sn_wire_frame f;
        char err[256] = "";
        int rc = decode_counted(cases[i], lens[i], &c, &f, err);
        cr_assert_eq(rc, SN_EPROTO, "case %d: %d %s", i, rc, err);
        cr_assert(strstr(err, "cannot fit"), "case %d: %s", i, err);
        cr_assert_eq(c.calls, 0, "case %d allocated", i);
    }
}

Test(sn_wire, length_over_frame)
{
    const char str[] = "\xc1\x01\x09\x81\x01\xdb\x00\x10\x00\x00"
                       "abc";                                          /* LEAVE node str32 */
    const char bin[] = "\xc1\x01\x06\x81\x09\xc6\x7f\xff\xff\xff\x00"; /* MESSAGE payload */
    const char fix[] = "\xc1\x01\x09\x81\x01\xa5"
                       "ab"; /* fixstr 5, 2 left */
    const char hash[] = "\xc1\x01\x10\x81\x01\xc4\x08\x01\x02\x03\x04\x05\x06\x07\x08";
    char err[256];
    sn_wire_frame f;
    cr_assert_eq(decode_copy(str, sizeof str - 1, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "LEAVE.node at byte 5") && strstr(err, "larger than"), "%s", err);
    cr_assert_eq(decode_copy(bin, sizeof bin - 1, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "MESSAGE.payload"), "%s", err);
    cr_assert_eq(decode_copy(fix, sizeof fix - 1, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert_eq(decode_copy(hash, sizeof hash - 1, NULL, &f, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "hash of 8 bytes"), "%s", err);
}

Test(sn_wire, deep_nesting)
{
    /* MESSAGE with unknown field 30 = 100,000 nested arrays */
    size_t depth = 100000;
    size_t n = 5 + depth + 1;
    char *buf = malloc(n);
    memcpy(buf, "\xc1\x01\x06\x81\x1e", 5);
    memset(buf + 5, 0x91, depth);
    buf[n - 1] = (char)0xc0;
    char err[256];
    sn_wire_frame f;
    cr_assert_eq(sn_wire_decode(buf, n, NULL, &f, err, sizeof err), SN_ELIMIT);
    cr_assert(strstr(err, "nesting deeper than 4"), "%s", err);
    /* level 4 is fine (top map 1, [2 [3 [4 nil]]]), level 5 is not */
    const char ok[] = "\xc1\x01\x06\x81\x1e\x91\x91\x91\xc0";
    const char deep[] = "\xc1\x01\x06\x81\x1e\x91\x91\x91\x91\xc0";
    cr_assert_eq(sn_wire_decode(ok, sizeof ok - 1, NULL, &f, err, sizeof err), SN_OK, "%s", err);
    sn_wire_frame_fini(&f);
    cr_assert_eq(sn_wire_decode(deep, sizeof deep - 1, NULL, &f, err, sizeof err), SN_ELIMIT);
    /* configurable */
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    lim.max_depth = 5;
    cr_assert_eq(sn_wire_decode(deep, sizeof deep - 1, &lim, &f, err, sizeof err), SN_OK);
    lim.max_depth = 2;
    cr_assert_eq(sn_wire_decode(deep, sizeof deep - 1, &lim, &f, err, sizeof err), SN_EINVAL);
    lim.max_depth = SN_WIRE_DEPTH_MAX + 1;
    cr_assert_eq(sn_wire_decode(deep, sizeof deep - 1, &lim, &f, err, sizeof err), SN_EINVAL);
    free(buf);
}

Test(sn_wire, unknown_fields_are_skipped)
{
    /* LEAVE {1: "ab", 2: 7, 40: {"x": [1, -1, 2.5f, 1.0, nil, true, fixext1, ext8, bin]},
     *        200: "future"} */
    const char in[] = "\xc1\x01\x09\x84"
                      "\x01\xa2"
                      "ab"
                      "\x02\x07"
                      "\x28\x81\xa1x\x99\x01\xff\xca\x40\x20\x00\x00"
                      "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00\xc0\xc3\xd4\x01\x02"
                      "\xc7\x02\x05\xaa\xbb\xc4\x01\x00"
                      "\xcc\xc8\xa6"
                      "future";
    sn_wire_frame f;
    char err[256];
    int rc = decode_copy(in, sizeof in - 1, NULL, &f, err, sizeof err);
    cr_assert_eq(rc, SN_OK, "%s", err);
    cr_assert_eq(f.kind, SN_WIRE_LEAVE);
    cr_assert_str_eq(f.u.leave.node, "ab");
    cr_assert_eq(f.u.leave.incarnation, 7);
    sn_wire_frame_fini(&f);
    /* a reserved type byte inside an unknown field is still malformed */
    const char bad[] = "\xc1\x01\x09\x81\x28\xc1";
    cr_assert_eq(decode_copy(bad, sizeof bad - 1, NULL, &f, err, sizeof err), SN_EPROTO);
}

Test(sn_wire, malformed_fields)
{
    struct {
        const char *in;
        size_t len;
        int rc;
        const char *msg;
    } cases[] = {
        /* duplicate field */
        {"\xc1\x01\x09\x82\x02\x01\x02\x02", 8, SN_EPROTO, "appears twice"},
        /* wrong type: node as integer, in a nested address */
        {"\xc1\x01\x06\x81\x01\x81\x01\x05", 8, SN_EPROTO, "MESSAGE.src.node at byte 7"},
        /* string key */
        {"\xc1\x01\x09\x81\xa1x\x01", 7, SN_EPROTO, "unsigned integer expected"},
        /* negative integer */
        {"\xc1\x01\x09\x81\x02\xff", 6, SN_EPROTO, "negative"},
        {"\xc1\x01\x09\x81\x02\xd0\x80", 7, SN_EPROTO, "negative"},
        /* u32 field over 32 bits */
        {"\xc1\x01\x08\x81\x01\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 14, SN_EPROTO, "32 bits"},
        /* enum out of range: mode 4 */
        {"\xc1\x01\x06\x81\x03\x04", 6, SN_EPROTO, "MESSAGE.mode at byte 5: value 4 out of range"},
        /* NUL inside a string */
        {"\xc1\x01\x09\x81\x01\xa3\x61\x00\x62", 9, SN_EPROTO, "NUL"},
        /* member without a name, and with an empty one */
        {"\xc1\x01\x04\x81\x03\x91\x82\x04\x01\x02\xa3"
         "abc",
         14, SN_EPROTO, "GOSSIP.members[0] at byte 6: member name missing"},
        {"\xc1\x01\x04\x81\x03\x91\x82\x01\xa0\x04\x01", 11, SN_EPROTO, "must not be empty"},
        /* bin where a string is expected, and the reverse */
        {"\xc1\x01\x09\x81\x01\xc4\x01x", 8, SN_EPROTO, "string expected"},
        {"\xc1\x01\x06\x81\x09\xa1x", 7, SN_EPROTO, "bin expected"},
        /* list where a struct is expected */
        {"\xc1\x01\x06\x81\x01\x90", 6, SN_EPROTO, "map expected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sn_wire_frame f;
        char err[256] = "";
        int rc = decode_copy(cases[i].in, cases[i].len, NULL, &f, err, sizeof err);
        cr_assert_eq(rc, cases[i].rc, "case %zu: %d %s", i, rc, err);
        cr_assert(strstr(err, cases[i].msg), "case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
        cr_assert_null(f.arena);
    }
    /* non-negative signed forms are accepted */
    const char signed_ok[] = "\xc1\x01\x09\x81\x02\xd1\x01\x00";
    sn_wire_frame f;
    cr_assert_eq(decode_copy(signed_ok, 8, NULL, &f, NULL, 0), SN_OK);
    cr_assert_eq(f.u.leave.incarnation, 256);
    sn_wire_frame_fini(&f);
}

Test(sn_wire, encoder_refuses_bad_frames)
{
    sn_buf b;
    sn_buf_init(&b);
    char err[256];
    sn_wire_frame f;
    sample(SN_WIRE_MESSAGE, &f);
    f.u.message.mode = (sn_wire_mode)4;
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "MESSAGE: mode 4 out of range"), "%s", err);
    sample(SN_WIRE_MESSAGE, &f);
    f.u.message.payload = (sn_wire_bytes){NULL, 3};
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_EINVAL);
    sn_wire_member m[2] = {sample_members[0], sample_members[1]};
    m[1].name = "";
    sample(SN_WIRE_GOSSIP, &f);
    f.u.gossip.members = m;
    f.u.gossip.nmembers = 2;
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "members[1]"), "%s", err);
    f.u.gossip.members = NULL;
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_EINVAL);
    sn_wire_frame_init(&f, (sn_wire_kind)0);
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_EINVAL);
    char *big = malloc(SN_WIRE_STRING_MAX + 2);
    memset(big, 'x', SN_WIRE_STRING_MAX + 1);
    big[SN_WIRE_STRING_MAX + 1] = 0;
    sample(SN_WIRE_HELLO, &f);
    f.u.hello.node = big;
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_ELIMIT);
    cr_assert(strstr(err, "HELLO: node of 65537 bytes"), "%s", err);
    cr_assert_eq(b.len, 0, "a failed encode leaves out as it was");
    free(big);
    /* a decoder with a smaller string limit refuses what the default encoder made */
    sample(SN_WIRE_HELLO, &f);
    encode_ok(&f, &b);
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    lim.max_string = 8;
    sn_wire_frame g;
    cr_assert_eq(sn_wire_decode(b.data, b.len, &lim, &g, err, sizeof err), SN_ELIMIT);
    cr_assert(strstr(err, "HELLO.endpoint") || strstr(err, "HELLO.software"), "%s", err);
    sn_buf_fini(&b);
}

Test(sn_wire, allocation_is_bounded_and_oom_is_clean)
{
    sn_buf b;
    sn_buf_init(&b);
    for (int k = 1; k <= SN_WIRE_KIND_LAST; k++) {
        sn_wire_frame f, g;
        sample((sn_wire_kind)k, &f);
        size_t n = encode_ok(&f, &b);
        counting c = {0, 0, 0, -1};
        char err[256];
        cr_assert_eq(decode_counted(b.data, n, &c, &g, err), SN_OK, "%s", err);
        cr_assert_leq(c.calls, 1, "one allocation per frame at most");
        cr_assert_leq(c.bytes, 16 * n + 1024, "%s: %zu bytes for a %zu-byte frame",
                      sn_wire_kind_name(f.kind), c.bytes, n);
        sn_wire_frame_fini(&g);
        cr_assert_eq(c.live, 0);
        if (c.calls == 0) continue;
        counting fail = {0, 0, 0, 0};
        cr_assert_eq(decode_counted(b.data, n, &fail, &g, err), SN_ENOMEM);
        cr_assert_null(g.arena);
        sn_wire_frame_fini(&g);
    }
    /* worst case for the bound: many minimal members */
    uint32_t nm = 4000;
    sn_wire_member *m = calloc(nm, sizeof *m);
    for (uint32_t i = 0; i < nm; i++)
        m[i].name = "x";
    sn_wire_frame f, g;
    sn_wire_frame_init(&f, SN_WIRE_GOSSIP);
    f.u.gossip.members = m;
    f.u.gossip.nmembers = nm;
    size_t n = encode_ok(&f, &b);
    counting c = {0, 0, 0, -1};
    char err[256];
    cr_assert_eq(decode_counted(b.data, n, &c, &g, err), SN_OK, "%s", err);
    cr_assert_leq(c.bytes, 16 * n + 1024, "%zu bytes for a %zu-byte frame", c.bytes, n);
    cr_assert(sn_wire_equal(&f, &g));
    sn_wire_frame_fini(&g);
    free(m);
    sn_buf_fini(&b);
}

Test(sn_wire, garbage_never_crashes)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint8_t buf[256];
    sn_buf b;
    sn_buf_init(&b);
    int decoded = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = 3 + (size_t)(iter % 64);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        buf[0] = SN_WIRE_MAGIC;
        buf[1] = SN_WIRE_VERSION;
        buf[2] = (uint8_t)(1 + buf[2] % SN_WIRE_KIND_LAST);
        if (iter & 1) buf[3] = (uint8_t)(0x80 | (buf[3] & 0x0f)); /* a fixmap, to get further in */
        sn_wire_frame f, g;
        char err[256];
        if (decode_copy(buf, n, NULL, &f, err, sizeof err) != SN_OK) continue;
        decoded++;
        sn_buf_reset(&b);
        cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_OK, "%s", err);
        cr_assert_eq(sn_wire_decode(b.data, b.len, NULL, &g, err, sizeof err), SN_OK, "%s", err);
        cr_assert(sn_wire_equal(&f, &g));
        sn_wire_frame_fini(&g);
        sn_wire_frame_fini(&f);
    }
    cr_assert_gt(decoded, 0, "some garbage should decode (unknown fields, defaults)");
    sn_buf_fini(&b);
}

Test(sn_wire, encode_is_compact_and_appends)
{
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_HEARTBEAT);
    f.u.heartbeat = (sn_wire_heartbeat){"n1", 5, 6, 0, 0};
    sn_buf b;
    sn_buf_init(&b);
    char err[64];
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_OK);
    const char want[] = "\xc1\x01\x03\x83\x01\xa2n1\x02\x05\x03\x06";
    cr_assert_eq(b.len, sizeof want - 1);
    cr_assert(memcmp(b.data, want, b.len) == 0);
    cr_assert_eq(sn_wire_encode(&f, NULL, &b, err, sizeof err), SN_OK);
    cr_assert_eq(b.len, 2 * (sizeof want - 1));
    sn_buf_fini(&b);
}

Test(sn_wire, names)
{
    cr_assert_str_eq(sn_wire_kind_name(SN_WIRE_MESSAGE), "MESSAGE");
    cr_assert_str_eq(sn_wire_kind_name((sn_wire_kind)0), "?");
    cr_assert_str_eq(sn_wire_kind_name((sn_wire_kind)99), "?");
    cr_assert_str_eq(sn_wire_state_name(SN_WIRE_SUSPECT), "suspect");
    cr_assert_str_eq(sn_wire_mode_name(SN_WIRE_REMOTE), "remote");
    cr_assert_str_eq(sn_wire_status_name(SN_WIRE_MAILBOX_FULL), "mailbox_full");
    cr_assert_str_eq(sn_wire_status_name((sn_wire_status)6), "?");
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_LEAVE);
    sn_wire_frame_fini(&f);
    sn_wire_frame_fini(&f);
    sn_wire_frame_fini(NULL);
}
