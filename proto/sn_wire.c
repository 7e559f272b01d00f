/* sn_wire: the cluster frame codec (proto/WIRE.md). Each frame kind is a table of fields
 * (number, type, offset); one encoder, one decoder and one comparison walk those tables, so the
 * specification, the encoder and the decoder cannot drift apart field by field. The one
 * exception is MESSAGE, the frame sent per envelope: it also has a direct writer and a direct
 * reader of its canonical form (a fifth of a flood's CPU on each node went to the walk), held
 * to the tables byte for byte by the property test and the fuzzer. */
#include "sn_wire.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_mpack.h"

/* ---- the field tables ------------------------------------------------------------------ */

typedef enum ftype {
    T_U64,    /* uint64_t: MessagePack unsigned integer */
    T_U32,    /* uint32_t: unsigned integer <= 0xffffffff */
    T_ENUM,   /* an enum (int-sized): unsigned integer <= enum_max */
    T_STR,    /* const char *: str, no NUL byte inside */
    T_BIN,    /* sn_wire_bytes: bin, zero-copy on decode */
    T_HASH,   /* uint8_t[16]: bin of exactly 16 bytes */
    T_STRUCT, /* an embedded struct: a nested map */
    T_LIST    /* pointer + uint32_t count: an array of maps */
} ftype;

typedef struct schema schema;

typedef struct field {
    uint8_t num;       /* the MessagePack key */
    uint8_t type;      /* ftype */
    uint8_t enum_max;  /* T_ENUM: highest valid value */
    uint8_t required;  /* T_STR: must be present and non-empty (list entries' names) */
    const char *name;  /* for error messages */
    size_t off;        /* offset in the struct */
    size_t count_off;  /* T_LIST: offset of the uint32_t count */
    const schema *sub; /* T_STRUCT, T_LIST: the element's schema */
} field;

struct schema {
    const char *name;
    const field *fields;
    int nfields;
    size_t size;       /* sizeof the struct (list elements) */
    size_t min_wire;   /* fewest bytes an element can take on the wire (list elements) */
    int limit_members; /* T_LIST of this: 1 = max_members applies, 0 = max_stages */
};

/* Enum fields are read and written as unsigned int: check that is their size. */
_Static_assert(sizeof(sn_wire_state) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(sn_wire_mode) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(sn_wire_status) == sizeof(unsigned), "enum size");

/* clang-format off */
#define FLD(n, ty, S, m)   {n, ty, 0, 0, #m, offsetof(S, m), 0, NULL}
#define FU64(n, S, m)      FLD(n, T_U64, S, m)
#define FU32(n, S, m)      FLD(n, T_U32, S, m)
#define FSTR(n, S, m)      FLD(n, T_STR, S, m)
#define FREQ(n, S, m)      {n, T_STR, 0, 1, #m, offsetof(S, m), 0, NULL}
#define FBIN(n, S, m)      FLD(n, T_BIN, S, m)
#define FHASH(n, S, m)     FLD(n, T_HASH, S, m)
#define FENUM(n, S, m, mx) {n, T_ENUM, mx, 0, #m, offsetof(S, m), 0, NULL}
#define FSTRUCT(n, S, m, sc) {n, T_STRUCT, 0, 0, #m, offsetof(S, m), 0, &sc}
#define FLIST(n, S, m, c, sc) {n, T_LIST, 0, 0, #m, offsetof(S, m), offsetof(S, c), &sc}
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define SCHEMA(nm, S, tab, minw, lm) {nm, tab, NELEM(tab), sizeof(S), minw, lm}
/* clang-format on */

static const field addr_fields[] = {
    FSTR(1, sn_wire_addr, node),
    FU64(2, sn_wire_addr, incarnation),
    FU64(3, sn_wire_addr, actor),
    FSTR(4, sn_wire_addr, stage),
};
static const schema addr_schema = SCHEMA("addr", sn_wire_addr, addr_fields, 1, 0);

/* A member or stage entry needs a non-empty name: map header, key, str header, one byte. */
#define ENTRY_MIN_WIRE 4

static const field member_fields[] = {
    FREQ(1, sn_wire_member, name),
    FSTR(2, sn_wire_member, endpoint),
    FSTR(3, sn_wire_member, http),
    FU64(4, sn_wire_member, incarnation),
    FENUM(5, sn_wire_member, state, SN_WIRE_LEFT),
    FU64(6, sn_wire_member, version),
};
static const schema member_schema =
    SCHEMA("member", sn_wire_member, member_fields, ENTRY_MIN_WIRE, 1);

static const field stage_fields[] = {
    FREQ(1, sn_wire_stage, stage),
    FU32(2, sn_wire_stage, actors),
};
static const schema stage_schema = SCHEMA("stage", sn_wire_stage, stage_fields, ENTRY_MIN_WIRE, 0);

#define HELLO_FIELDS                                                                               \
    FSTR(1, sn_wire_hello, cluster), FSTR(2, sn_wire_hello, node),                                 \
        FU64(3, sn_wire_hello, incarnation), FU32(4, sn_wire_hello, version),                      \
        FSTR(5, sn_wire_hello, endpoint), FSTR(6, sn_wire_hello, http),                            \
        FU32(7, sn_wire_hello, flags), FSTR(8, sn_wire_hello, software)

static const field hello_fields[] = {HELLO_FIELDS};
static const field welcome_fields[] = {
    HELLO_FIELDS,
    FLIST(9, sn_wire_hello, members, nmembers, member_schema),
};
static const field heartbeat_fields[] = {
    FSTR(1, sn_wire_heartbeat, node),
    FU64(2, sn_wire_heartbeat, incarnation),
    FU64(3, sn_wire_heartbeat, counter),
    FU64(4, sn_wire_heartbeat, digest),
    FU64(5, sn_wire_heartbeat, registry_version),
};
static const field gossip_fields[] = {
    FSTR(1, sn_wire_gossip, node),
    FU64(2, sn_wire_gossip, incarnation),
    FLIST(3, sn_wire_gossip, members, nmembers, member_schema),
};
static const field registry_fields[] = {
    FSTR(1, sn_wire_registry, node),
    FU64(2, sn_wire_registry, incarnation),
    FU64(3, sn_wire_registry, version),
    FLIST(4, sn_wire_registry, stages, nstages, stage_schema),
};
static const field message_fields[] = {
    FSTRUCT(1, sn_wire_message, src, addr_schema),
    FSTRUCT(2, sn_wire_message, dst, addr_schema),
    FENUM(3, sn_wire_message, mode, SN_WIRE_REMOTE),
    FSTR(4, sn_wire_message, msg_id),
    FSTR(5, sn_wire_message, reply_id),
    FU64(6, sn_wire_message, session),
    FU64(7, sn_wire_message, seq),
    FU32(8, sn_wire_message, flags),
    FBIN(9, sn_wire_message, payload),
};
static const field reply_fields[] = {
    FSTRUCT(1, sn_wire_reply, dst, addr_schema),
    FSTRUCT(2, sn_wire_reply, src, addr_schema),
    FSTR(3, sn_wire_reply, handler),
    FU64(4, sn_wire_reply, session),
    FENUM(5, sn_wire_reply, status, SN_WIRE_FAILED),
    FSTR(6, sn_wire_reply, error),
    FU64(7, sn_wire_reply, seq),
    FU32(8, sn_wire_reply, flags),
    FBIN(9, sn_wire_reply, payload),
};
static const field error_fields[] = {
    FU32(1, sn_wire_error, code),
    FSTR(2, sn_wire_error, text),
    FU64(3, sn_wire_error, seq),
    FU64(4, sn_wire_error, session),
};
static const field leave_fields[] = {
    FSTR(1, sn_wire_leave, node),
    FU64(2, sn_wire_leave, incarnation),
};
static const field status_req_fields[] = {
    FSTR(1, sn_wire_status_frame, node),
    FU64(2, sn_wire_status_frame, incarnation),
    FU64(3, sn_wire_status_frame, request),
};
static const field status_fields[] = {
    FSTR(1, sn_wire_status_frame, node),
    FU64(2, sn_wire_status_frame, incarnation),
    FU64(3, sn_wire_status_frame, request),
    FBIN(4, sn_wire_status_frame, payload),
};
/* The lock kinds share one struct and one numbering; each carries a subset. */
#define LK_LOCK    FSTR(1, sn_wire_lock, lock)
#define LK_ADDR    FSTRUCT(2, sn_wire_lock, addr, addr_schema)
#define LK_HANDLER FSTR(3, sn_wire_lock, handler)
#define LK_MS      FU32(4, sn_wire_lock, ms)
#define LK_TOKEN   FU64(5, sn_wire_lock, token)
#define LK_REQUEST FU64(6, sn_wire_lock, request)
#define LK_CODE    FU32(7, sn_wire_lock, code)
#define LK_TEXT    FSTR(8, sn_wire_lock, text)
#define LK_PAYLOAD FBIN(9, sn_wire_lock, payload)
static const field lock_acquire_fields[] = {LK_LOCK, LK_ADDR,    LK_HANDLER,
                                            LK_MS,   LK_REQUEST, LK_PAYLOAD};
static const field lock_grant_fields[] = {LK_LOCK,  LK_ADDR,    LK_HANDLER, LK_MS,
                                          LK_TOKEN, LK_REQUEST, LK_PAYLOAD};
static const field lock_extend_fields[] = {LK_LOCK, LK_ADDR, LK_MS, LK_TOKEN};
static const field lock_release_fields[] = {LK_LOCK, LK_ADDR, LK_TOKEN};
static const field lock_deny_fields[] = {LK_LOCK, LK_ADDR, LK_REQUEST, LK_CODE, LK_TEXT};
static const field code_miss_fields[] = {
    FHASH(1, sn_wire_code_miss, hash),
    FU64(2, sn_wire_code_miss, seq),
};

/* Indexed by kind; the union members all start at &f->u, so offsets are relative to it. */
static const schema kind_schemas[SN_WIRE_KIND_LAST + 1] = {
    [SN_WIRE_HELLO] = SCHEMA("HELLO", sn_wire_hello, hello_fields, 1, 0),
    [SN_WIRE_WELCOME] = SCHEMA("WELCOME", sn_wire_hello, welcome_fields, 1, 0),
    [SN_WIRE_HEARTBEAT] = SCHEMA("HEARTBEAT", sn_wire_heartbeat, heartbeat_fields, 1, 0),
    [SN_WIRE_GOSSIP] = SCHEMA("GOSSIP", sn_wire_gossip, gossip_fields, 1, 0),
    [SN_WIRE_REGISTRY] = SCHEMA("REGISTRY", sn_wire_registry, registry_fields, 1, 0),
    [SN_WIRE_MESSAGE] = SCHEMA("MESSAGE", sn_wire_message, message_fields, 1, 0),
    [SN_WIRE_REPLY] = SCHEMA("REPLY", sn_wire_reply, reply_fields, 1, 0),
    [SN_WIRE_ERROR] = SCHEMA("ERROR", sn_wire_error, error_fields, 1, 0),
    [SN_WIRE_LEAVE] = SCHEMA("LEAVE", sn_wire_leave, leave_fields, 1, 0),
    [SN_WIRE_STATUS_REQ] = SCHEMA("STATUS_REQ", sn_wire_status_frame, status_req_fields, 1, 0),
    [SN_WIRE_STATUS] = SCHEMA("STATUS", sn_wire_status_frame, status_fields, 1, 0),
    [SN_WIRE_LOCK_ACQUIRE] = SCHEMA("LOCK_ACQUIRE", sn_wire_lock, lock_acquire_fields, 1, 0),
    [SN_WIRE_LOCK_GRANT] = SCHEMA("LOCK_GRANT", sn_wire_lock, lock_grant_fields, 1, 0),
    [SN_WIRE_LOCK_EXTEND] = SCHEMA("LOCK_EXTEND", sn_wire_lock, lock_extend_fields, 1, 0),
    [SN_WIRE_LOCK_RELEASE] = SCHEMA("LOCK_RELEASE", sn_wire_lock, lock_release_fields, 1, 0),
    [SN_WIRE_CODE_MISS] = SCHEMA("CODE_MISS", sn_wire_code_miss, code_miss_fields, 1, 0),
    [SN_WIRE_LOCK_DENY] = SCHEMA("LOCK_DENY", sn_wire_lock, lock_deny_fields, 1, 0),
};

static const schema *kind_schema(int kind)
{
    if (kind < 1 || kind > SN_WIRE_KIND_LAST) return NULL;
    return &kind_schemas[kind];
}

/* Typed access to a field of the struct at base. */
#define AT(base, off, T)  ((T *)(void *)((char *)(base) + (off)))
#define CAT(base, off, T) ((T const *)(const void *)((const char *)(base) + (off)))

/* ---- small shared helpers ----------------------------------------------------------------- */

static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

void sn_wire_limits_init(sn_wire_limits *lim)
{
    assert(lim && "sn_wire_limits_init: NULL limits");
    lim->max_frame = SN_WIRE_FRAME_MAX;
    lim->max_string = SN_WIRE_STRING_MAX;
    lim->max_payload = SN_WIRE_FRAME_MAX;
    lim->max_members = SN_WIRE_MEMBERS_MAX;
    lim->max_stages = SN_WIRE_STAGES_MAX;
    lim->max_depth = SN_WIRE_DEPTH;
    lim->alloc = NULL;
    lim->alloc_ud = NULL;
}

static const sn_wire_limits *limits_or_default(const sn_wire_limits *lim, sn_wire_limits *tmp)
{
    if (lim) return lim;
    sn_wire_limits_init(tmp);
    return tmp;
}

static int limits_check(const sn_wire_limits *lim, char *err, size_t errlen)
{
    if (lim->max_depth < SN_WIRE_DEPTH_MIN || lim->max_depth > SN_WIRE_DEPTH_MAX) {
        fmt_err(err, errlen, "wire limits: max_depth %d outside %d..%d", lim->max_depth,
                SN_WIRE_DEPTH_MIN, SN_WIRE_DEPTH_MAX);
        return SN_EINVAL;
    }
    if (lim->max_frame < SN_WIRE_HEADER_LEN + 1) {
        fmt_err(err, errlen, "wire limits: max_frame %zu too small", lim->max_frame);
        return SN_EINVAL;
    }
    return SN_OK;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

static int hash_is_zero(const uint8_t *h)
{
    for (int i = 0; i < SN_WIRE_HASH_LEN; i++)
        if (h[i]) return 0;
    return 1;
}

/* ---- names ------------------------------------------------------------------------------- */

const char *sn_wire_kind_name(sn_wire_kind k)
{
    const schema *s = kind_schema((int)k);
    return s ? s->name : "?";
}

const char *sn_wire_state_name(sn_wire_state s)
{
    static const char *const names[] = {"alive", "suspect", "down", "left"};
    return (unsigned)s < 4 ? names[s] : "?";
}

const char *sn_wire_mode_name(sn_wire_mode m)
{
    static const char *const names[] = {"one", "all", "local", "remote"};
    return (unsigned)m < 4 ? names[m] : "?";
}

const char *sn_wire_status_name(sn_wire_status s)
{
    static const char *const names[] = {"ok",      "no_route",     "node_down",
                                        "timeout", "mailbox_full", "error"};
    return (unsigned)s < 6 ? names[s] : "?";
}

/* ---- frames ------------------------------------------------------------------------------ */

struct sn_wire_arena {
    sn_wire_alloc_fn alloc;
    void *ud;
    size_t size; /* bytes allocated, header included */
};

/* Arena data starts after the header, aligned for any field type. */
#define ARENA_HDR ((sizeof(sn_wire_arena) + 15) & ~(size_t)15)

void sn_wire_frame_init(sn_wire_frame *f, sn_wire_kind kind)
{
    assert(f && "sn_wire_frame_init: NULL frame");
    memset(f, 0, sizeof *f);
    f->kind = kind;
}

void sn_wire_frame_fini(sn_wire_frame *f)
{
    if (!f) return;
    sn_wire_arena *a = f->arena;
    if (a) a->alloc(a->ud, a, a->size, 0);
    memset(f, 0, sizeof *f);
}

/* The path of the field being read or written, for messages: "members[3].name". Built only
 * when an error is reported, so the hot path pays two stores per nested field. */
typedef struct fpath {
    const char *name[SN_WIRE_DEPTH_MAX + 2];
    long index[SN_WIRE_DEPTH_MAX + 2]; /* -1: not a list */
    int n;
} fpath;

static void path_push(fpath *p, const char *name)
{
    p->name[p->n] = name;
    p->index[p->n] = -1;
    p->n++;
}

static void path_format(const fpath *p, char *out, size_t outlen)
{
    size_t w = 0;
    out[0] = 0;
    for (int i = 0; i < p->n && w < outlen; i++) {
        int k;
        if (p->index[i] >= 0)
            k = snprintf(out + w, outlen - w, ".%s[%ld]", p->name[i], p->index[i]);
        else
            k = snprintf(out + w, outlen - w, ".%s", p->name[i]);
        if (k < 0) break;
        w += (size_t)k;
    }
}

/* ---- encoding ---------------------------------------------------------------------------- */

typedef struct enc {
    sn_buf *out;
    const sn_wire_limits *lim;
    char *err;
    size_t errlen;
    size_t start; /* out->len when the frame began */
    const char *kind;
    fpath path;
} enc;

static int enc_fail(enc *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int enc_fail(enc *e, int code, const char *fmt, ...)
{
    if (e->err && e->errlen) {
        char what[160], where[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        path_format(&e->path, where, sizeof where);
        snprintf(e->err, e->errlen, "encode %s%s: %s", e->kind, where, what);
    }
    return code;
}

/* The writers of sn_mpack reserve what they write; a failure leaves the frame to be cut. */
static int enc_oom(enc *e)
{
    return enc_fail(e, SN_ENOMEM, "out of memory");
}

static int struct_present_count(const schema *s, const void *base);

/* Whether a field differs from its zero value; zero values are omitted on the wire. */
static int field_present(const field *fd, const void *base)
{
    switch ((ftype)fd->type) {
    case T_U64:
        return *CAT(base, fd->off, uint64_t) != 0;
    case T_U32:
        return *CAT(base, fd->off, uint32_t) != 0;
    case T_ENUM:
        return *CAT(base, fd->off, unsigned) != 0;
    case T_STR: {
        const char *s = *CAT(base, fd->off, const char *);
        return s && s[0];
    }
    case T_BIN:
        return CAT(base, fd->off, sn_wire_bytes)->len != 0;
    case T_HASH:
        return !hash_is_zero(CAT(base, fd->off, uint8_t));
    case T_STRUCT:
        return struct_present_count(fd->sub, CAT(base, fd->off, char)) != 0;
    case T_LIST:
        return *CAT(base, fd->count_off, uint32_t) != 0;
    }
    return 0;
}

static int struct_present_count(const schema *s, const void *base)
{
    int n = 0;
    for (int i = 0; i < s->nfields; i++)
        n += field_present(&s->fields[i], base);
    return n;
}

static int enc_struct(enc *e, const schema *s, const void *base);

static int enc_field(enc *e, const field *fd, const void *base)
{
    sn_buf *b = e->out;
    const sn_wire_limits *lim = e->lim;
    int rc;
    if (sn_mpack_put_uint(b, fd->num)) return enc_oom(e);
    switch ((ftype)fd->type) {
    case T_U64:
        return sn_mpack_put_uint(b, *CAT(base, fd->off, uint64_t)) ? enc_oom(e) : SN_OK;
    case T_U32:
        return sn_mpack_put_uint(b, *CAT(base, fd->off, uint32_t)) ? enc_oom(e) : SN_OK;
    case T_ENUM: {
        unsigned v = *CAT(base, fd->off, unsigned);
        if (v > fd->enum_max)
            return enc_fail(e, SN_EINVAL, "%s %u out of range 0..%u", fd->name, v, fd->enum_max);
        return sn_mpack_put_uint(b, v) ? enc_oom(e) : SN_OK;
    }
    case T_STR: {
        const char *str = *CAT(base, fd->off, const char *);
        size_t n = strlen(str);
        if (n > lim->max_string)
            return enc_fail(e, SN_ELIMIT, "%s of %zu bytes over the limit of %zu", fd->name, n,
                            lim->max_string);
        if (n > 0xffffffffu)
            return enc_fail(e, SN_ELIMIT, "%s of %zu bytes over 4 GiB", fd->name, n);
        return sn_mpack_put_str(b, str, n) ? enc_oom(e) : SN_OK;
    }
    case T_BIN: {
        const sn_wire_bytes *by = CAT(base, fd->off, sn_wire_bytes);
        if (!by->data)
            return enc_fail(e, SN_EINVAL, "%s has NULL data and length %zu", fd->name, by->len);
        if (by->len > lim->max_payload || by->len > 0xffffffffu)
            return enc_fail(e, SN_ELIMIT, "%s of %zu bytes over the limit of %zu", fd->name,
                            by->len, lim->max_payload);
        /* Refuse before copying a payload that cannot fit the frame anyway. */
        if (b->len - e->start + by->len > lim->max_frame)
            return enc_fail(e, SN_ELIMIT, "%s of %zu bytes makes the frame exceed %zu", fd->name,
                            by->len, lim->max_frame);
        return sn_mpack_put_bin(b, by->data, by->len) ? enc_oom(e) : SN_OK;
    }
    case T_HASH:
        return sn_mpack_put_bin(b, CAT(base, fd->off, uint8_t), SN_WIRE_HASH_LEN) ? enc_oom(e)
                                                                                   : SN_OK;
    case T_STRUCT:
        path_push(&e->path, fd->name);
        rc = enc_struct(e, fd->sub, CAT(base, fd->off, char));
        e->path.n--;
        return rc;
    case T_LIST: {
        uint32_t n = *CAT(base, fd->count_off, uint32_t);
        const char *arr = *CAT(base, fd->off, const char *);
        uint32_t max = fd->sub->limit_members ? lim->max_members : lim->max_stages;
        if (!arr) return enc_fail(e, SN_EINVAL, "%s is NULL with %u entries", fd->name, n);
        if (n > max) return enc_fail(e, SN_ELIMIT, "%u %s over the limit of %u", n, fd->name, max);
        if (sn_mpack_put_array(b, n)) return enc_oom(e);
        rc = SN_OK;
        path_push(&e->path, fd->name);
        for (uint32_t i = 0; i < n && rc == SN_OK; i++) {
            e->path.index[e->path.n - 1] = i;
            rc = enc_struct(e, fd->sub, arr + (size_t)i * fd->sub->size);
        }
        e->path.n--;
        return rc;
    }
    }
    return enc_fail(e, SN_EINVAL, "bad field type");
}

static int enc_struct(enc *e, const schema *s, const void *base)
{
    uint32_t present = 0; /* bit i: field i is written */
    uint32_t n = 0;
    for (int i = 0; i < s->nfields; i++) {
        const field *fd = &s->fields[i];
        if (field_present(fd, base)) {
            present |= 1u << i;
            n++;
        } else if (fd->required) {
            return enc_fail(e, SN_EINVAL, "%s must not be empty", fd->name);
        }
    }
    if (sn_mpack_put_map(e->out, n)) return enc_oom(e);
    int rc = SN_OK;
    for (int i = 0; i < s->nfields && rc == SN_OK; i++)
        if (present & (1u << i)) rc = enc_field(e, &s->fields[i], base);
    return rc;
}

/* The writers below write at w, in room reserved once for the whole frame, and return the
 * byte past what they wrote; every form is sn_mpack's (its raw-pointer writers). */
static uint8_t *w_ufield(uint8_t *w, uint8_t key, uint64_t v)
{
    if (!v)
        return w;
    w += sn_mpack_uint_at(w, key);
    return w + sn_mpack_uint_at(w, v);
}

static uint8_t *w_sfield(uint8_t *w, uint8_t key, const char *str, size_t n)
{
    if (!n)
        return w;
    w += sn_mpack_uint_at(w, key);
    w += sn_mpack_str_hdr(w, n);
    memcpy(w, str, n);
    return w + n;
}

static uint8_t *w_addr(uint8_t *w, uint8_t key, const sn_wire_addr *a, size_t node, size_t stage)
{
    unsigned n = (node != 0) + (a->incarnation != 0) + (a->actor != 0) + (stage != 0);
    if (!n)
        return w;
    w += sn_mpack_uint_at(w, key);
    w += sn_mpack_map_hdr(w, n);
    w = w_sfield(w, 1, a->node, node);
    w = w_ufield(w, 2, a->incarnation);
    w = w_ufield(w, 3, a->actor);
    return w_sfield(w, 4, a->stage, stage);
}

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

/* MESSAGE, the frame sent per envelope, written field by field into one reservation: the same bytes as
 * enc_struct (fields in number order, zero values left out, the shortest forms), without its
 * walk of the field tables (a fifth of a sender's CPU in a flood). Only for a frame that
 * passes every check; anything else goes to enc_struct, which words the error. 1 if done. */
static int enc_message_fast(const sn_wire_message *m, const sn_wire_limits *lim, sn_buf *out)
{
    size_t sn = len_of(m->src.node), ss = len_of(m->src.stage), dn = len_of(m->dst.node),
           ds = len_of(m->dst.stage), id = len_of(m->msg_id), rid = len_of(m->reply_id);
    size_t most = sn > ss ? sn : ss;
    most = most > dn ? most : dn;
    most = most > ds ? most : ds;
    most = most > id ? most : id;
    most = most > rid ? most : rid;
    const sn_wire_bytes *p = &m->payload;
    if (most > lim->max_string || (unsigned)m->mode > SN_WIRE_REMOTE ||
        (p->len && (!p->data || p->len > lim->max_payload || p->len > 0xffffffffu)))
        return 0;
    /* header 3, map 1, two addresses of 34 at most, the other fields 46 at most */
    size_t strings = sn + ss + dn + ds + id + rid, bound = 128 + strings;
    if (bound + p->len > lim->max_frame + 128 || sn_mpack_room(out, bound + p->len))
        return 0;
    int src = sn || ss || m->src.incarnation || m->src.actor;
    int dst = dn || ds || m->dst.incarnation || m->dst.actor;
    unsigned n = (unsigned)(src + dst + (m->mode != 0) + (id != 0) + (rid != 0) +
                            (m->session != 0) + (m->seq != 0) + (m->flags != 0) + (p->len != 0));
    uint8_t *start = (uint8_t *)out->data + out->len, *w = start;
    *w++ = SN_WIRE_MAGIC;
    *w++ = SN_WIRE_VERSION;
    *w++ = SN_WIRE_MESSAGE;
    w += sn_mpack_map_hdr(w, n);
    w = w_addr(w, 1, &m->src, sn, ss);
    w = w_addr(w, 2, &m->dst, dn, ds);
    w = w_ufield(w, 3, (unsigned)m->mode);
    w = w_sfield(w, 4, m->msg_id, id);
    w = w_sfield(w, 5, m->reply_id, rid);
    w = w_ufield(w, 6, m->session);
    w = w_ufield(w, 7, m->seq);
    w = w_ufield(w, 8, m->flags);
    if (p->len) {
        if ((size_t)(w - start) + p->len > lim->max_frame)
            return 0; /* nothing copied; the general way words it */
        w += sn_mpack_uint_at(w, 9);
        w += sn_mpack_bin_hdr(w, p->len);
        memcpy(w, p->data, p->len);
        w += p->len;
    }
    if ((size_t)(w - start) > lim->max_frame)
        return 0;
    out->len += (size_t)(w - start);
    return 1;
}

int sn_wire_encode(const sn_wire_frame *f, const sn_wire_limits *lim, sn_buf *out, char *err,
                   size_t errlen)
{
    assert(f && out && "sn_wire_encode: NULL frame or buffer");
    sn_wire_limits tmp;
    lim = limits_or_default(lim, &tmp);
    if (f->kind == SN_WIRE_MESSAGE && limits_check(lim, NULL, 0) == SN_OK &&
        enc_message_fast(&f->u.message, lim, out))
        return SN_OK;
    return sn_wire_encode_generic(f, lim, out, err, errlen);
}

int sn_wire_encode_generic(const sn_wire_frame *f, const sn_wire_limits *lim, sn_buf *out,
                           char *err, size_t errlen)
{
    assert(f && out && "sn_wire_encode: NULL frame or buffer");
    sn_wire_limits tmp;
    lim = limits_or_default(lim, &tmp);
    int rc = limits_check(lim, err, errlen);
    if (rc) return rc;
    const schema *s = kind_schema((int)f->kind);
    if (!s) {
        fmt_err(err, errlen, "encode: unknown frame kind %d", (int)f->kind);
        return SN_EINVAL;
    }
    enc e = {out, lim, err, errlen, out->len, s->name, {{NULL}, {0}, 0}};
    const uint8_t header[SN_WIRE_HEADER_LEN] = {SN_WIRE_MAGIC, SN_WIRE_VERSION, (uint8_t)f->kind};
    if (sn_mpack_put_raw(out, header, sizeof header)) {
        fmt_err(err, errlen, "encode %s: out of memory", s->name);
        return SN_ENOMEM;
    }
    rc = enc_struct(&e, s, &f->u);
    if (rc == SN_OK && out->len - e.start > lim->max_frame)
        rc = enc_fail(&e, SN_ELIMIT, "frame of %zu bytes over the limit of %zu", out->len - e.start,
                      lim->max_frame);
    if (rc) out->len = e.start;
    return rc;
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* Two passes over the same bytes: the first validates everything and sums the arena bytes the
 * strings and lists need (base pointers are NULL, nothing is written); then one allocation;
 * the second pass fills the frame and cannot fail. So a bad frame never allocates. */
typedef struct dec {
    const uint8_t *p;
    size_t len, pos;
    const sn_wire_limits *lim;
    char *arena; /* NULL in the first pass */
    size_t need; /* arena bytes taken so far */
    size_t cap;  /* a caller's scratch (one pass): its size; 0 for an arena sized by pass 1 */
    int over;    /* the one pass needed more than cap: decode again in two passes */
    char *err;
    size_t errlen;
    const char *kind;
    fpath path;
} dec;

static int dec_fail(dec *d, int code, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int dec_fail(dec *d, int code, size_t at, const char *fmt, ...)
{
    if (!d->err || !d->errlen || d->arena) /* the second pass never fails; keep the first's */
        return code;
    char where[160];
    path_format(&d->path, where, sizeof where);
    char what[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(d->err, d->errlen, "%s%s at byte %zu: %s", d->kind, where, at, what);
    return code;
}

static size_t left(const dec *d)
{
    return d->len - d->pos;
}

/* Words why sn_mpack_read failed at `at`, `what` naming the value expected. */
static int r_fail(dec *d, sn_mpack_fail f, size_t at, const sn_mpack_item *it, const char *what)
{
    if (f == SN_MPACK_TRUNCATED) return dec_fail(d, SN_EPROTO, at, "truncated: %s expected", what);
    if (f == SN_MPACK_OVERRUN)
        return dec_fail(d, SN_EPROTO, at, "length %llu larger than the %zu bytes left",
                        (unsigned long long)it->v.u, left(d));
    return dec_fail(d, SN_EPROTO, at, "invalid MessagePack type byte 0x%02x", d->p[at]);
}

/* Reads one value header with sn_mpack (and the body of a str, bin or ext). */
static inline __attribute__((always_inline)) int r_item(dec *d, sn_mpack_item *it,
                                                        const char *what)
{
    const uint8_t *q = d->p + d->pos;
    sn_mpack_fail f = sn_mpack_read(&q, d->p + d->len, it);
    if (f != SN_MPACK_OK) return r_fail(d, f, d->pos, it, what);
    d->pos = (size_t)(q - d->p);
    return SN_OK;
}

/* An unsigned integer; non-negative signed forms are accepted too (other encoders use them). */
static int r_uint(dec *d, uint64_t *v)
{
    size_t at = d->pos;
    sn_mpack_item it;
    int rc = r_item(d, &it, "integer");
    if (rc) return rc;
    if (it.type == SN_MPACK_UINT) {
        *v = it.v.u;
        return SN_OK;
    }
    if (it.type != SN_MPACK_INT)
        return dec_fail(d, SN_EPROTO, at, "unsigned integer expected, found type byte 0x%02x",
                        d->p[at]);
    if (it.v.i < 0)
        return dec_fail(d, SN_EPROTO, at, "negative integer where an unsigned one is expected");
    *v = (uint64_t)it.v.i;
    return SN_OK;
}

/* The count of a container header just read at `at`: nesting and count are checked (each
 * element takes >= 1 byte, each map pair >= 2), so a count bomb is refused here, before
 * anything is allocated. */
static int r_count(dec *d, const sn_mpack_item *it, size_t at, uint32_t *n, int level)
{
    int is_map = it->type == SN_MPACK_MAP;
    if (level > d->lim->max_depth)
        return dec_fail(d, SN_ELIMIT, at, "nesting deeper than %d", d->lim->max_depth);
    if (it->v.u > left(d) / (is_map ? 2 : 1))
        return dec_fail(d, SN_EPROTO, at, "%llu %s cannot fit in the %zu bytes left",
                        (unsigned long long)it->v.u, is_map ? "pairs" : "elements", left(d));
    *n = (uint32_t)it->v.u;
    return SN_OK;
}

/* A map or array header. */
static int r_container(dec *d, int want_map, uint32_t *n, int level)
{
    size_t at = d->pos;
    const char *want = want_map ? "map" : "array";
    sn_mpack_item it;
    int rc = r_item(d, &it, want);
    if (rc) return rc;
    if (it.type != SN_MPACK_MAP && it.type != SN_MPACK_ARRAY)
        return dec_fail(d, SN_EPROTO, at, "%s expected, found type byte 0x%02x", want, d->p[at]);
    if ((it.type == SN_MPACK_MAP) != want_map)
        return dec_fail(d, SN_EPROTO, at, "%s expected, found %s", want,
                        want_map ? "an array" : "a map");
    return r_count(d, &it, at, n, level);
}

/* A str or bin, body included: *data and *n. */
static int r_raw(dec *d, int want_str, const uint8_t **data, size_t *n)
{
    size_t at = d->pos;
    const char *want = want_str ? "string" : "bin";
    sn_mpack_item it;
    int rc = r_item(d, &it, want);
    if (rc) return rc;
    if (it.type != SN_MPACK_STR && it.type != SN_MPACK_BIN)
        return dec_fail(d, SN_EPROTO, at, "%s expected, found type byte 0x%02x", want, d->p[at]);
    if ((it.type == SN_MPACK_STR) != want_str)
        return dec_fail(d, SN_EPROTO, at, "%s expected, found %s", want,
                        want_str ? "a bin" : "a string");
    *data = it.data;
    *n = (size_t)it.v.u;
    return SN_OK;
}

/* Skips one value of any MessagePack type: unknown fields from a newer minor revision. */
static int skip_value(dec *d, int level)
{
    size_t at = d->pos;
    sn_mpack_item it;
    int rc = r_item(d, &it, "value");
    if (rc) return rc;
    if (it.type != SN_MPACK_MAP && it.type != SN_MPACK_ARRAY) return SN_OK;
    uint32_t count;
    if ((rc = r_count(d, &it, at, &count, level))) return rc;
    uint64_t items = (uint64_t)count * (it.type == SN_MPACK_MAP ? 2 : 1);
    for (uint64_t i = 0; i < items; i++)
        if ((rc = skip_value(d, level + 1))) return rc;
    return SN_OK;
}

/* Takes n bytes of the arena (aligned to 8 when align); NULL in the first pass, and in a
 * one-pass decode into a scratch that has no room left (which then starts over). */
static void *take(dec *d, size_t n, int align)
{
    if (align) d->need = (d->need + 7) & ~(size_t)7;
    void *p = d->arena ? d->arena + d->need : NULL;
    d->need += n;
    if (d->cap && d->need > d->cap) {
        d->over = 1;
        return NULL;
    }
    return p;
}

static int dec_struct(dec *d, const schema *s, void *base, int level);

static int dec_field(dec *d, const field *fd, void *base, int level)
{
    size_t at = d->pos;
    int rc;
    switch ((ftype)fd->type) {
    case T_U64:
    case T_U32:
    case T_ENUM: {
        uint64_t v;
        if ((rc = r_uint(d, &v))) return rc;
        if (fd->type == T_U32 && v > 0xffffffffu)
            return dec_fail(d, SN_EPROTO, at, "%llu does not fit 32 bits", (unsigned long long)v);
        if (fd->type == T_ENUM && v > fd->enum_max)
            return dec_fail(d, SN_EPROTO, at, "value %llu out of range 0..%u",
                            (unsigned long long)v, fd->enum_max);
        if (base) {
            if (fd->type == T_U64)
                *AT(base, fd->off, uint64_t) = v;
            else if (fd->type == T_U32)
                *AT(base, fd->off, uint32_t) = (uint32_t)v;
            else
                *AT(base, fd->off, unsigned) = (unsigned)v;
        }
        return SN_OK;
    }
    case T_STR: {
        size_t n;
        const uint8_t *body;
        if ((rc = r_raw(d, 1, &body, &n))) return rc;
        if (n > d->lim->max_string)
            return dec_fail(d, SN_ELIMIT, at, "string of %zu bytes over the limit of %zu", n,
                            d->lim->max_string);
        const char *src = (const char *)body;
        if (memchr(src, 0, n)) return dec_fail(d, SN_EPROTO, at, "string contains a NUL byte");
        if (fd->required && n == 0) return dec_fail(d, SN_EPROTO, at, "must not be empty");
        if (n == 0) {
            if (base) *AT(base, fd->off, const char *) = "";
            return SN_OK;
        }
        char *dst = take(d, n + 1, 0);
        if (dst) {
            memcpy(dst, src, n);
            dst[n] = 0;
            *AT(base, fd->off, const char *) = dst;
        }
        return SN_OK;
    }
    case T_BIN:
    case T_HASH: {
        size_t n;
        const uint8_t *body;
        if ((rc = r_raw(d, 0, &body, &n))) return rc;
        if (fd->type == T_HASH && n != SN_WIRE_HASH_LEN)
            return dec_fail(d, SN_EPROTO, at, "hash of %zu bytes, not %d", n, SN_WIRE_HASH_LEN);
        if (fd->type == T_BIN && n > d->lim->max_payload)
            return dec_fail(d, SN_ELIMIT, at, "payload of %zu bytes over the limit of %zu", n,
                            d->lim->max_payload);
        if (base) {
            if (fd->type == T_HASH) {
                memcpy(AT(base, fd->off, uint8_t), body, n);
            } else {
                sn_wire_bytes *by = AT(base, fd->off, sn_wire_bytes);
                by->data = body;
                by->len = n;
            }
        }
        return SN_OK;
    }
    case T_STRUCT:
        return dec_struct(d, fd->sub, base ? AT(base, fd->off, char) : NULL, level + 1);
    case T_LIST: {
        uint32_t n;
        if ((rc = r_container(d, 0, &n, level + 1))) return rc;
        const schema *es = fd->sub;
        uint32_t max = es->limit_members ? d->lim->max_members : d->lim->max_stages;
        if (n > left(d) / es->min_wire)
            return dec_fail(d, SN_EPROTO, at, "%u entries cannot fit in the %zu bytes left", n,
                            left(d));
        if (n > max) return dec_fail(d, SN_ELIMIT, at, "%u entries over the limit of %u", n, max);
        char *arr = n ? take(d, (size_t)n * es->size, 1) : NULL;
        if (arr) memset(arr, 0, (size_t)n * es->size);
        for (uint32_t i = 0; i < n; i++) {
            d->path.index[d->path.n - 1] = i;
            if ((rc = dec_struct(d, es, arr ? arr + (size_t)i * es->size : NULL, level + 2)))
                return rc;
        }
        d->path.index[d->path.n - 1] = -1;
        if (base) {
            *AT(base, fd->off, void *) = arr;
            *AT(base, fd->count_off, uint32_t) = n;
        }
        return SN_OK;
    }
    }
    return dec_fail(d, SN_EPROTO, at, "bad field type");
}

/* Empty strings of absent fields point at a static "", never NULL. */
static void fill_defaults(const schema *s, void *base)
{
    for (int i = 0; i < s->nfields; i++) {
        const field *fd = &s->fields[i];
        if (fd->type == T_STR)
            *AT(base, fd->off, const char *) = "";
        else if (fd->type == T_STRUCT)
            fill_defaults(fd->sub, AT(base, fd->off, char));
    }
}

/* One map of field number -> value at nesting `level` (the frame's map is level 1). */
static int dec_struct(dec *d, const schema *s, void *base, int level)
{
    size_t at = d->pos;
    uint32_t n;
    int rc = r_container(d, 1, &n, level);
    if (rc) return rc;
    if (base) fill_defaults(s, base);
    uint64_t seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t kat = d->pos;
        uint64_t key;
        if ((rc = r_uint(d, &key))) return rc;
        const field *fd = NULL;
        if (key >= 1 && key <= (uint64_t)s->nfields && s->fields[key - 1].num == key)
            fd = &s->fields[key - 1]; /* most tables number their fields 1..n */
        else
            for (int j = 0; j < s->nfields; j++)
                if (s->fields[j].num == key) {
                    fd = &s->fields[j];
                    break;
                }
        if (!fd) { /* a field of a newer revision: skip it */
            if ((rc = skip_value(d, level + 1))) return rc;
            continue;
        }
        if (seen & ((uint64_t)1 << fd->num))
            return dec_fail(d, SN_EPROTO, kat, "field %u (%s) appears twice", fd->num, fd->name);
        seen |= (uint64_t)1 << fd->num;
        path_push(&d->path, fd->name);
        rc = dec_field(d, fd, base, level);
        d->path.n--;
        if (rc) return rc;
    }
    for (int j = 0; j < s->nfields; j++) {
        const field *fd = &s->fields[j];
        if (fd->required && !(seen & ((uint64_t)1 << fd->num)))
            return dec_fail(d, SN_EPROTO, at, "%s %s missing", s->name, fd->name);
    }
    return SN_OK;
}

static int dec_pass(dec *d, const schema *s, void *base)
{
    d->pos = SN_WIRE_HEADER_LEN;
    d->need = 0;
    d->path.n = 0;
    int rc = dec_struct(d, s, base, 1);
    if (rc) return rc;
    if (d->pos != d->len)
        return dec_fail(d, SN_EPROTO, d->pos, "%zu trailing bytes after the frame",
                        d->len - d->pos);
    return SN_OK;
}

/* ---- MESSAGE, the frame received per envelope, read without the field tables -------------- */

/* Only the canonical form (what sn_wire_encode writes: fields in number order, each once, of
 * the expected MessagePack types) is read here; anything else (another order, an unknown
 * field, a signed integer, a value to refuse, no room left in the scratch) returns 0 and the
 * frame goes through dec_struct, which reads it or words the error. */
typedef struct fast {
    const uint8_t *p, *end;
    const sn_wire_limits *lim;
    char *scratch;
    size_t used, cap;
} fast;

static inline __attribute__((always_inline)) int fast_item(fast *x, sn_mpack_item *it,
                                                           sn_mpack_type type)
{
    return sn_mpack_read(&x->p, x->end, it) == SN_MPACK_OK && it->type == type;
}

static int fast_map(fast *x, uint32_t *n)
{
    sn_mpack_item it;
    if (!fast_item(x, &it, SN_MPACK_MAP) || it.v.u > 9)
        return 0;
    *n = (uint32_t)it.v.u;
    return 1;
}

/* The key of the next field, above *last (strictly: so none appears twice), at most max. */
static int fast_key(fast *x, unsigned *last, unsigned max)
{
    sn_mpack_item it;
    if (!fast_item(x, &it, SN_MPACK_UINT) || it.v.u <= *last || it.v.u > max)
        return 0;
    *last = (unsigned)it.v.u;
    return 1;
}

static int fast_uint(fast *x, uint64_t *v, uint64_t max)
{
    sn_mpack_item it;
    if (!fast_item(x, &it, SN_MPACK_UINT) || it.v.u > max)
        return 0;
    *v = it.v.u;
    return 1;
}

static int fast_str(fast *x, const char **out)
{
    sn_mpack_item it;
    if (!fast_item(x, &it, SN_MPACK_STR) || it.v.u > x->lim->max_string ||
        it.v.u + 1 > x->cap - x->used || memchr(it.data, 0, (size_t)it.v.u))
        return 0;
    char *dst = x->scratch + x->used;
    memcpy(dst, it.data, (size_t)it.v.u);
    dst[it.v.u] = 0;
    x->used += (size_t)it.v.u + 1;
    *out = dst;
    return 1;
}

static int fast_addr(fast *x, sn_wire_addr *a)
{
    uint32_t n;
    unsigned key = 0;
    if (!fast_map(x, &n))
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!fast_key(x, &key, 4))
            return 0;
        int ok = key == 1   ? fast_str(x, &a->node)
                 : key == 2 ? fast_uint(x, &a->incarnation, UINT64_MAX)
                 : key == 3 ? fast_uint(x, &a->actor, UINT64_MAX)
                            : fast_str(x, &a->stage);
        if (!ok)
            return 0;
    }
    return 1;
}

static int dec_message_fast(const uint8_t *p, size_t len, const sn_wire_limits *lim,
                            sn_wire_message *m, char *scratch, size_t cap)
{
    fast x = {p + SN_WIRE_HEADER_LEN, p + len, lim, scratch, 0, cap};
    m->src.node = m->src.stage = m->dst.node = m->dst.stage = m->msg_id = m->reply_id = "";
    uint32_t n;
    unsigned key = 0;
    if (!fast_map(&x, &n))
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!fast_key(&x, &key, 9))
            return 0;
        uint64_t v = 0;
        sn_mpack_item it;
        int ok = 1;
        switch (key) {
        case 1: ok = fast_addr(&x, &m->src); break;
        case 2: ok = fast_addr(&x, &m->dst); break;
        case 3: ok = fast_uint(&x, &v, SN_WIRE_REMOTE); m->mode = (sn_wire_mode)v; break;
        case 4: ok = fast_str(&x, &m->msg_id); break;
        case 5: ok = fast_str(&x, &m->reply_id); break;
        case 6: ok = fast_uint(&x, &m->session, UINT64_MAX); break;
        case 7: ok = fast_uint(&x, &m->seq, UINT64_MAX); break;
        case 8: ok = fast_uint(&x, &v, 0xffffffffu); m->flags = (uint32_t)v; break;
        default:
            ok = fast_item(&x, &it, SN_MPACK_BIN) && it.v.u <= lim->max_payload;
            if (ok)
                m->payload = (sn_wire_bytes){it.data, (size_t)it.v.u};
        }
        if (!ok)
            return 0;
    }
    return x.p == x.end;
}

int sn_wire_peek(const char *data, size_t len, int *version, sn_wire_kind *kind)
{
    const uint8_t *p = (const uint8_t *)data;
    if (version) *version = 0;
    if (kind) *kind = (sn_wire_kind)0;
    if (len < SN_WIRE_HEADER_LEN || p[0] != SN_WIRE_MAGIC) return SN_EPROTO;
    if (version) *version = p[1];
    if (p[1] != SN_WIRE_VERSION) return SN_ENOTSUP;
    if (kind) *kind = (sn_wire_kind)p[2];
    return kind_schema(p[2]) ? SN_OK : SN_ENOTSUP;
}

int sn_wire_decode(const char *data, size_t len, const sn_wire_limits *lim, sn_wire_frame *f,
                   char *err, size_t errlen)
{
    return sn_wire_decode_in(data, len, lim, f, NULL, 0, err, errlen);
}

int sn_wire_decode_in(const char *data, size_t len, const sn_wire_limits *lim, sn_wire_frame *f,
                      void *scratch, size_t cap, char *err, size_t errlen)
{
    assert(f && "sn_wire_decode: NULL frame");
    assert((data || len == 0) && "sn_wire_decode: NULL data");
    memset(f, 0, sizeof *f);
    sn_wire_limits tmp;
    lim = limits_or_default(lim, &tmp);
    int rc = limits_check(lim, err, errlen);
    if (rc) return rc;
    const uint8_t *p = (const uint8_t *)data;
    if (len == 0) {
        fmt_err(err, errlen, "frame at byte 0: empty");
        return SN_EPROTO;
    }
    if (p[0] != SN_WIRE_MAGIC) {
        fmt_err(err, errlen,
                "frame at byte 0: magic 0x%02x, expected 0x%02x: not a stage-node "
                "frame",
                p[0], SN_WIRE_MAGIC);
        return SN_EPROTO;
    }
    if (len < 2) {
        fmt_err(err, errlen, "frame at byte 1: truncated before the version");
        return SN_EPROTO;
    }
    if (p[1] != SN_WIRE_VERSION) {
        fmt_err(err, errlen,
                "frame at byte 1: peer speaks protocol version %u, this node "
                "speaks version %u",
                p[1], SN_WIRE_VERSION);
        return SN_ENOTSUP;
    }
    if (len > lim->max_frame) {
        fmt_err(err, errlen, "frame of %zu bytes over the limit of %zu", len, lim->max_frame);
        return SN_ELIMIT;
    }
    if (len < SN_WIRE_HEADER_LEN) {
        fmt_err(err, errlen, "frame at byte 2: truncated before the kind");
        return SN_EPROTO;
    }
    const schema *s = kind_schema(p[2]);
    if (!s) {
        fmt_err(err, errlen, "frame at byte 2: unknown frame kind %u", p[2]);
        return SN_ENOTSUP;
    }
    dec d;
    memset(&d, 0, sizeof d);
    d.p = p;
    d.len = len;
    d.lim = lim;
    d.err = err;
    d.errlen = errlen;
    d.kind = s->name;
    if (scratch && cap && p[2] == SN_WIRE_MESSAGE) {
        if (dec_message_fast(p, len, lim, &f->u.message, scratch, cap)) {
            f->kind = SN_WIRE_MESSAGE;
            return SN_OK;
        }
        memset(f, 0, sizeof *f);
    }
    if (scratch && cap) { /* one pass, straight into the scratch; any failure starts over */
        d.arena = scratch;
        d.cap = cap;
        if (dec_pass(&d, s, &f->u) == SN_OK && !d.over) {
            f->kind = (sn_wire_kind)p[2];
            return SN_OK;
        }
        memset(f, 0, sizeof *f);
        d.arena = NULL;
        d.cap = 0;
        d.over = 0;
    }
    if ((rc = dec_pass(&d, s, NULL))) return rc;
    sn_wire_arena *a = NULL;
    if (d.need) {
        sn_wire_alloc_fn alloc = lim->alloc ? lim->alloc : default_alloc;
        size_t size = ARENA_HDR + d.need;
        a = alloc(lim->alloc_ud, NULL, 0, size);
        if (!a) {
            fmt_err(err, errlen, "%s: out of memory for %zu bytes", s->name, size);
            return SN_ENOMEM;
        }
        a->alloc = alloc;
        a->ud = lim->alloc_ud;
        a->size = size;
        d.arena = (char *)a + ARENA_HDR;
    }
    f->kind = (sn_wire_kind)p[2];
    f->arena = a;
    rc = dec_pass(&d, s, &f->u);
    assert(rc == SN_OK && "sn_wire_decode: second pass failed after the first passed");
    (void)rc;
    return SN_OK;
}

/* ---- comparison -------------------------------------------------------------------------- */

static int struct_equal(const schema *s, const void *a, const void *b);

static int field_equal(const field *fd, const void *a, const void *b)
{
    switch ((ftype)fd->type) {
    case T_U64:
        return *CAT(a, fd->off, uint64_t) == *CAT(b, fd->off, uint64_t);
    case T_U32:
        return *CAT(a, fd->off, uint32_t) == *CAT(b, fd->off, uint32_t);
    case T_ENUM:
        return *CAT(a, fd->off, unsigned) == *CAT(b, fd->off, unsigned);
    case T_STR:
        return strcmp(str_or_empty(*CAT(a, fd->off, const char *)),
                      str_or_empty(*CAT(b, fd->off, const char *))) == 0;
    case T_BIN: {
        const sn_wire_bytes *x = CAT(a, fd->off, sn_wire_bytes),
                            *y = CAT(b, fd->off, sn_wire_bytes);
        return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    case T_HASH:
        return memcmp(CAT(a, fd->off, uint8_t), CAT(b, fd->off, uint8_t), SN_WIRE_HASH_LEN) == 0;
    case T_STRUCT:
        return struct_equal(fd->sub, CAT(a, fd->off, char), CAT(b, fd->off, char));
    case T_LIST: {
        uint32_t n = *CAT(a, fd->count_off, uint32_t);
        if (n != *CAT(b, fd->count_off, uint32_t)) return 0;
        const char *x = *CAT(a, fd->off, const char *), *y = *CAT(b, fd->off, const char *);
        for (uint32_t i = 0; i < n; i++)
            if (!struct_equal(fd->sub, x + (size_t)i * fd->sub->size,
                              y + (size_t)i * fd->sub->size))
                return 0;
        return 1;
    }
    }
    return 0;
}

static int struct_equal(const schema *s, const void *a, const void *b)
{
    for (int i = 0; i < s->nfields; i++)
        if (!field_equal(&s->fields[i], a, b)) return 0;
    return 1;
}

int sn_wire_equal(const sn_wire_frame *a, const sn_wire_frame *b)
{
    if (a->kind != b->kind) return 0;
    const schema *s = kind_schema((int)a->kind);
    return s ? struct_equal(s, &a->u, &b->u) : 0;
}
