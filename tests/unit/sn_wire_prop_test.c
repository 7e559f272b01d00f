/* Property test of the sn_wire encoder: random frames of every kind and of many sizes (member
 * lists of 0..5000, strings of 0 to a few KiB, payloads up to the limits), appended to a fresh
 * sn_buf behind a random-length prefix, so every alignment to the buffer's growth steps is hit.
 * Each must decode back equal, or be refused with SN_ELIMIT only when it really is over a
 * limit, leaving the buffer as it was. Runs under ASan in make test: an encoder that writes
 * past its reservation fails here. Seed fixed (SN_PROP_SEED overrides it, to replay a find). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_wire.h"

#define PROP_SEED  0x5eed2026c0dec0deULL
#define PROP_ITERS 300

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r) /* xorshift64* */
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(rng *r, uint64_t n)
{
    return n ? next(r) % n : 0;
}

/* Everything a random frame points at, freed after the iteration. */
typedef struct pool {
    void **p;
    size_t n, cap;
} pool;

static void *pool_alloc(pool *pl, size_t n)
{
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? 2 * pl->cap : 64;
        pl->p = realloc(pl->p, pl->cap * sizeof *pl->p);
        cr_assert_not_null(pl->p);
    }
    void *m = malloc(n ? n : 1);
    cr_assert_not_null(m);
    pl->p[pl->n++] = m;
    return m;
}

static void pool_free(pool *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        free(pl->p[i]);
    pl->n = 0;
}

/* Integers of every width, boundaries included. */
static uint64_t rand_u64(rng *r)
{
    static const uint64_t edges[] = {
        0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffffULL, 0x100000000ULL, UINT64_MAX};
    if (below(r, 4) == 0) return edges[below(r, sizeof edges / sizeof edges[0])];
    int bits = (int)below(r, 65);
    return bits == 64 ? next(r) : next(r) & ((1ULL << bits) - 1);
}

static uint32_t rand_u32(rng *r)
{
    return (uint32_t)(below(r, 3) ? rand_u64(r) : next(r));
}

/* Lengths near every MessagePack header width and sizes from empty to a few KiB. */
static size_t rand_len(rng *r, size_t max)
{
    static const size_t edges[] = {0, 1, 15, 16, 17, 20, 21, 31, 32, 33, 255, 256, 257, 4096};
    size_t n;
    switch (below(r, 4)) {
    case 0:
        n = edges[below(r, sizeof edges / sizeof edges[0])];
        break;
    case 1:
        n = (size_t)below(r, 4097);
        break;
    default:
        n = (size_t)below(r, 48);
        break;
    }
    return n > max ? max : n;
}

static const char *rand_str(rng *r, pool *pl, size_t min, size_t max)
{
    size_t n = rand_len(r, max);
    if (n < min) n = min;
    if (n == 0 && below(r, 2)) return NULL; /* NULL encodes as "" */
    char *s = pool_alloc(pl, n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + below(r, 255)); /* any byte but NUL */
    s[n] = 0;
    return s;
}

static sn_wire_bytes rand_bytes(rng *r, pool *pl, size_t max)
{
    size_t n;
    switch (below(r, 8)) {
    case 0:
        n = max - below(r, 64);
        break; /* at (or just under) the payload limit */
    case 1:
        n = (size_t)below(r, 256 * 1024);
        break;
    default:
        n = rand_len(r, max);
        break;
    }
    if (n == 0) return (sn_wire_bytes){below(r, 2) ? NULL : "", 0};
    unsigned char *b = pool_alloc(pl, n);
    if (n <= 4096) {
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)next(r);
    } else { /* large: a pattern with random bytes at both ends, cheap to make under ASan */
        memset(b, (int)(next(r) & 0xff), n);
        for (size_t i = 0; i < 64; i++)
            b[i] = b[n - 1 - i] = (unsigned char)next(r);
    }
    return (sn_wire_bytes){b, n};
}

static sn_wire_addr rand_addr(rng *r, pool *pl)
{
    return (sn_wire_addr){rand_str(r, pl, 0, 200), rand_u64(r), rand_u64(r),
                          rand_str(r, pl, 0, 200)};
}

/* Counts of 0..5000; large ones are rarer so that the run stays short under ASan. */
static uint32_t rand_count(rng *r)
{
    switch (below(r, 10)) {
    case 0:
        return (uint32_t)below(r, 5001);
    case 1:
        return (uint32_t)(SN_WIRE_MEMBERS_MAX - 2 + below(r, 5));
    case 2:
    case 3:
        return (uint32_t)below(r, 300);
    default:
        return (uint32_t)below(r, 40);
    }
}

static sn_wire_member *rand_members(rng *r, pool *pl, uint32_t n)
{
    sn_wire_member *m = pool_alloc(pl, (size_t)n * sizeof *m);
    for (uint32_t i = 0; i < n; i++) {
        m[i].name = rand_str(r, pl, 1, n > 300 ? 40 : 300);
        m[i].endpoint = rand_str(r, pl, 0, n > 300 ? 40 : 300);
        m[i].http = rand_str(r, pl, 0, 40);
        m[i].incarnation = rand_u64(r);
        m[i].state = (sn_wire_state)below(r, SN_WIRE_LEFT + 1);
        m[i].version = rand_u64(r);
    }
    return m;
}

static sn_wire_stage *rand_stages(rng *r, pool *pl, uint32_t n)
{
    sn_wire_stage *s = pool_alloc(pl, (size_t)n * sizeof *s);
    for (uint32_t i = 0; i < n; i++) {
        s[i].stage = rand_str(r, pl, 1, 100);
        s[i].actors = rand_u32(r);
    }
    return s;
}

/* Fills every field of the kind's struct; fields the kind does not carry are ignored. */
static void rand_frame(rng *r, pool *pl, sn_wire_kind kind, size_t max_payload, sn_wire_frame *f)
{
    sn_wire_frame_init(f, kind);
    switch (kind) {
    case SN_WIRE_HELLO:
    case SN_WIRE_WELCOME: {
        sn_wire_hello *h = &f->u.hello;
        h->cluster = rand_str(r, pl, 0, 100);
        h->node = rand_str(r, pl, 0, 100);
        h->incarnation = rand_u64(r);
        h->version = rand_u32(r);
        h->endpoint = rand_str(r, pl, 0, 100);
        h->http = rand_str(r, pl, 0, 100);
        h->flags = rand_u32(r);
        h->software = rand_str(r, pl, 0, 100);
        if (kind == SN_WIRE_WELCOME) {
            h->nmembers = rand_count(r);
            h->members = rand_members(r, pl, h->nmembers);
        }
        break;
    }
    case SN_WIRE_HEARTBEAT:
        f->u.heartbeat = (sn_wire_heartbeat){rand_str(r, pl, 0, 100), rand_u64(r), rand_u64(r),
                                             rand_u64(r), rand_u64(r)};
        break;
    case SN_WIRE_GOSSIP:
        f->u.gossip.node = rand_str(r, pl, 0, 100);
        f->u.gossip.incarnation = rand_u64(r);
        f->u.gossip.nmembers = rand_count(r);
        f->u.gossip.members = rand_members(r, pl, f->u.gossip.nmembers);
        break;
    case SN_WIRE_REGISTRY:
        f->u.registry.node = rand_str(r, pl, 0, 100);
        f->u.registry.incarnation = rand_u64(r);
        f->u.registry.version = rand_u64(r);
        f->u.registry.nstages = rand_count(r);
        f->u.registry.stages = rand_stages(r, pl, f->u.registry.nstages);
        break;
    case SN_WIRE_MESSAGE: {
        sn_wire_message *m = &f->u.message;
        m->src = rand_addr(r, pl);
        m->dst = rand_addr(r, pl);
        m->mode = (sn_wire_mode)below(r, SN_WIRE_REMOTE + 1);
        m->msg_id = rand_str(r, pl, 0, SN_WIRE_STRING_MAX);
        m->reply_id = rand_str(r, pl, 0, 100);
        m->session = rand_u64(r);
        m->seq = rand_u64(r);
        m->flags = rand_u32(r);
        m->payload = rand_bytes(r, pl, max_payload);
        break;
    }
    case SN_WIRE_REPLY: {
        sn_wire_reply *m = &f->u.reply;
        m->dst = rand_addr(r, pl);
        m->src = rand_addr(r, pl);
        m->handler = rand_str(r, pl, 0, 100);
        m->session = rand_u64(r);
        m->status = (sn_wire_status)below(r, SN_WIRE_FAILED + 1);
        m->error = rand_str(r, pl, 0, SN_WIRE_STRING_MAX);
        m->seq = rand_u64(r);
        m->flags = rand_u32(r);
        m->payload = rand_bytes(r, pl, max_payload);
        break;
    }
    case SN_WIRE_ERROR:
        f->u.error = (sn_wire_error){rand_u32(r), rand_str(r, pl, 0, SN_WIRE_STRING_MAX),
                                     rand_u64(r), rand_u64(r)};
        break;
    case SN_WIRE_LEAVE:
        f->u.leave = (sn_wire_leave){rand_str(r, pl, 0, 100), rand_u64(r)};
        break;
    case SN_WIRE_STATUS_REQ:
    case SN_WIRE_STATUS:
        f->u.status = (sn_wire_status_frame){rand_str(r, pl, 0, 100), rand_u64(r), rand_u64(r),
                                             rand_bytes(r, pl, max_payload)};
        break;
    case SN_WIRE_LOCK_ACQUIRE:
    case SN_WIRE_LOCK_GRANT:
    case SN_WIRE_LOCK_EXTEND:
    case SN_WIRE_LOCK_RELEASE:
    case SN_WIRE_LOCK_DENY: {
        sn_wire_lock *l = &f->u.lock;
        l->lock = rand_str(r, pl, 0, 300);
        l->addr = rand_addr(r, pl);
        l->handler = rand_str(r, pl, 0, 100);
        l->ms = rand_u32(r);
        l->token = rand_u64(r);
        l->request = rand_u64(r);
        l->code = rand_u32(r);
        l->text = rand_str(r, pl, 0, 300);
        l->payload = rand_bytes(r, pl, max_payload);
        break;
    }
    case SN_WIRE_CODE_MISS:
        for (int i = 0; i < SN_WIRE_HASH_LEN; i++)
            f->u.code_miss.hash[i] = below(r, 4) ? (uint8_t)next(r) : 0;
        f->u.code_miss.seq = rand_u64(r);
        break;
    }
}

/* The only legitimate refusal of a well-formed frame: it really is over a limit of lim. A
 * frame is over when a list is longer than allowed, or when it encodes (with no frame limit)
 * to more than max_frame bytes. */
static void check_refusal(const sn_wire_frame *f, const sn_wire_limits *lim, const char *err)
{
    uint32_t nmembers = f->kind == SN_WIRE_WELCOME  ? f->u.hello.nmembers
                        : f->kind == SN_WIRE_GOSSIP ? f->u.gossip.nmembers
                                                    : 0;
    uint32_t nstages = f->kind == SN_WIRE_REGISTRY ? f->u.registry.nstages : 0;
    if (nmembers > lim->max_members || nstages > lim->max_stages) return;
    sn_wire_limits wide = *lim;
    wide.max_frame = SIZE_MAX;
    sn_buf b;
    sn_buf_init(&b);
    char err2[256] = "";
    int rc = sn_wire_encode(f, &wide, &b, err2, sizeof err2);
    cr_assert_eq(rc, SN_OK, "%s refused (%s) and not encodable without a frame limit: %s",
                 sn_wire_kind_name(f->kind), err, err2);
    cr_assert_gt(b.len, lim->max_frame, "%s of %zu bytes refused as over %zu: %s",
                 sn_wire_kind_name(f->kind), b.len, lim->max_frame, err);
    sn_buf_fini(&b);
}

/* Encodes f after `prefix` bytes already in a fresh buffer; a random prefix makes the frame
 * start anywhere relative to the buffer's growth steps. */
static void check_one(const sn_wire_frame *f, const sn_wire_limits *lim, size_t prefix)
{
    sn_buf b;
    sn_buf_init(&b);
    cr_assert_eq(sn_buf_reserve(&b, prefix), 0);
    for (size_t i = 0; i < prefix; i++)
        b.data[i] = (char)(i * 7);
    b.len = prefix;
    char err[256] = "";
    int rc = sn_wire_encode(f, lim, &b, err, sizeof err);
    for (size_t i = 0; i < prefix; i++)
        cr_assert_eq(b.data[i], (char)(i * 7), "encode %s wrote over the bytes before it",
                     sn_wire_kind_name(f->kind));
    if (rc != SN_OK) {
        cr_assert_eq(rc, SN_ELIMIT, "encode %s: %s (%s)", sn_wire_kind_name(f->kind),
                     sn_strerror(rc), err);
        char err2[256] = "";
        sn_buf gb;
        sn_buf_init(&gb);
        cr_assert_eq(sn_wire_encode_generic(f, lim, &gb, err2, sizeof err2), rc);
        cr_assert_str_eq(err, err2, "the MESSAGE path words a refusal as the field tables do");
        sn_buf_fini(&gb);
        cr_assert_eq(b.len, prefix, "a refused encode left bytes behind");
        check_refusal(f, lim, err);
        sn_buf_fini(&b);
        return;
    }
    cr_assert_leq(b.len - prefix, lim->max_frame);
    /* The MESSAGE path of sn_wire_encode writes what the field tables write, byte for byte. */
    sn_buf gb;
    sn_buf_init(&gb);
    cr_assert_eq(sn_wire_encode_generic(f, lim, &gb, err, sizeof err), SN_OK, "%s", err);
    cr_assert(gb.len == b.len - prefix && memcmp(gb.data, b.data + prefix, gb.len) == 0,
              "%s: sn_wire_encode and the field tables wrote different bytes",
              sn_wire_kind_name(f->kind));
    sn_buf_fini(&gb);
    /* Decode from an exactly sized copy, so a read past the end is caught too. */
    size_t n = b.len - prefix;
    char *copy = malloc(n);
    cr_assert_not_null(copy);
    memcpy(copy, b.data + prefix, n);
    sn_wire_frame g;
    rc = sn_wire_decode(copy, n, lim, &g, err, sizeof err);
    cr_assert_eq(rc, SN_OK, "decode %s of %zu bytes: %s", sn_wire_kind_name(f->kind), n, err);
    cr_assert(sn_wire_equal(f, &g), "%s of %zu bytes did not round-trip",
              sn_wire_kind_name(f->kind), n);
    /* One pass into a scratch (what the cluster does per frame): the same frame whether its
     * strings fit (no arena) or not (decoded again into an arena), and the same error for a
     * frame cut short by one byte. */
    static _Alignas(16) char scratch[4096];
    size_t cap = prefix % 3 == 0 ? 48 : prefix % 3 == 1 ? 512 : sizeof scratch;
    sn_wire_frame h;
    rc = sn_wire_decode_in(copy, n, lim, &h, scratch, cap, err, sizeof err);
    cr_assert_eq(rc, SN_OK, "decode_in %s of %zu bytes (scratch %zu): %s",
                 sn_wire_kind_name(f->kind), n, cap, err);
    cr_assert(sn_wire_equal(f, &h), "%s of %zu bytes did not round-trip through a scratch of %zu",
              sn_wire_kind_name(f->kind), n, cap);
    sn_wire_frame_fini(&h);
    char err2[256] = "";
    int rc1 = sn_wire_decode(copy, n - 1, lim, &h, err, sizeof err);
    int rc2 = sn_wire_decode_in(copy, n - 1, lim, &h, scratch, cap, err2, sizeof err2);
    cr_assert(rc1 != SN_OK && rc1 == rc2 && strcmp(err, err2) == 0,
              "%s cut short: decode %d (%s), decode_in %d (%s)", sn_wire_kind_name(f->kind),
              rc1, err, rc2, err2);
    /* The encoding is canonical: the decoded frame encodes to the same bytes. */
    sn_buf_reset(&b);
    cr_assert_eq(sn_wire_encode(&g, lim, &b, err, sizeof err), SN_OK, "%s", err);
    cr_assert(b.len == n && memcmp(b.data, copy, n) == 0, "%s re-encoded differently",
              sn_wire_kind_name(f->kind));
    sn_wire_frame_fini(&g);
    free(copy);
    sn_buf_fini(&b);
}

static uint64_t seed(void)
{
    const char *s = getenv("SN_PROP_SEED");
    return s && *s ? strtoull(s, NULL, 0) : PROP_SEED;
}

/* Default limits: large frames and long lists meet the limits and must be refused cleanly. */
Test(sn_wire_prop, random_frames_default_limits, .timeout = 240)
{
    rng r = {seed()};
    pool pl = {0};
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    for (int it = 0; it < PROP_ITERS; it++) {
        for (int k = 1; k <= SN_WIRE_KIND_LAST; k++) {
            sn_wire_frame f;
            rand_frame(&r, &pl, (sn_wire_kind)k, lim.max_payload, &f);
            check_one(&f, &lim, (size_t)below(&r, 600));
            pool_free(&pl);
        }
    }
    free(pl.p);
}

/* Limits raised so that 5000 members and long strings fit: everything must round-trip. */
Test(sn_wire_prop, random_frames_wide_limits, .timeout = 240)
{
    rng r = {seed() ^ 0x9e3779b97f4a7c15ULL};
    pool pl = {0};
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    lim.max_members = 5000;
    lim.max_stages = 5000;
    lim.max_frame = 64u * 1024 * 1024;
    for (int it = 0; it < PROP_ITERS / 2; it++) {
        for (int k = 1; k <= SN_WIRE_KIND_LAST; k++) {
            sn_wire_frame f;
            rand_frame(&r, &pl, (sn_wire_kind)k, SN_WIRE_FRAME_MAX, &f);
            check_one(&f, &lim, (size_t)below(&r, 600));
            pool_free(&pl);
        }
    }
    free(pl.p);
}

/* The crash of issue 11 as it happened: a WELCOME listing every member of a cluster on one
 * machine (1..64 nodes, host-pid style names of several lengths), encoded into a fresh buffer
 * the way send_frame does. */
Test(sn_wire_prop, welcome_of_local_members)
{
    static const char host[] = "stage-test-host.example";
    for (size_t hostlen = 0; hostlen < sizeof host; hostlen++) {
        for (int nodes = 1; nodes <= 64; nodes++) {
            sn_wire_member m[64];
            char names[64][48], eps[64][32], https[64][32];
            for (int i = 0; i < nodes; i++) {
                snprintf(names[i], sizeof names[i], "%.*s-%d", (int)hostlen, host, 31000 + i);
                snprintf(eps[i], sizeof eps[i], "tcp://127.0.0.1:%d", 7400 + i);
                snprintf(https[i], sizeof https[i], "127.0.0.1:%d", 8400 + i);
                m[i] = (sn_wire_member){names[i],      eps[i],
                                        https[i],      1764400000000000ULL + (uint64_t)i,
                                        SN_WIRE_ALIVE, (uint64_t)i};
            }
            sn_wire_frame f;
            sn_wire_frame_init(&f, SN_WIRE_WELCOME);
            f.u.hello = (sn_wire_hello){"stage",
                                        names[0],
                                        1764400000000000ULL,
                                        SN_WIRE_VERSION,
                                        eps[0],
                                        https[0],
                                        0x5,
                                        "stage-node 0.1.0",
                                        m,
                                        (uint32_t)nodes};
            sn_wire_limits lim;
            sn_wire_limits_init(&lim);
            check_one(&f, &lim, 0);
        }
    }
}
