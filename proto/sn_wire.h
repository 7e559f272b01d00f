/* sn_wire: the cluster wire protocol codec: every ZeroMQ message between nodes is one frame.
 * Owns the frame format (proto/WIRE.md) and nothing else: no sockets, no membership, no routing. */
#ifndef SN_WIRE_H
#define SN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sn_buf.h"

#define SN_WIRE_MAGIC      0xC1 /* byte 0: the one byte MessagePack never uses */
#define SN_WIRE_VERSION    1    /* byte 1: the protocol version this build speaks */
#define SN_WIRE_HEADER_LEN 3    /* magic, version, kind; frozen across all versions */

/* Default limits (docs/cluster.md, "Settings"); every one is configurable through
 * sn_wire_limits. */
#define SN_WIRE_FRAME_MAX   (2u * 1024 * 1024) /* hard cap, = ZMQ_MAXMSGSIZE */
#define SN_WIRE_STRING_MAX  (64u * 1024)       /* names, ids, texts */
#define SN_WIRE_MEMBERS_MAX 4096u              /* entries per GOSSIP / WELCOME */
#define SN_WIRE_STAGES_MAX  65536u             /* entries per REGISTRY */
#define SN_WIRE_DEPTH       4                  /* nesting depth, the top map is level 1 */
#define SN_WIRE_DEPTH_MIN   3                  /* the deepest known field is at level 3 */
#define SN_WIRE_DEPTH_MAX   16                 /* highest max_depth accepted */
#define SN_WIRE_HASH_LEN    16                 /* bytecode hash (MurmurHash3 x64_128) */

typedef enum sn_wire_kind {
    SN_WIRE_HELLO = 1,         /* u.hello: first frame on a new connection */
    SN_WIRE_WELCOME = 2,       /* u.hello: answer to HELLO, with the member list */
    SN_WIRE_HEARTBEAT = 3,     /* u.heartbeat */
    SN_WIRE_GOSSIP = 4,        /* u.gossip */
    SN_WIRE_REGISTRY = 5,      /* u.registry */
    SN_WIRE_MESSAGE = 6,       /* u.message: the envelope of a stage message */
    SN_WIRE_REPLY = 7,         /* u.reply */
    SN_WIRE_ERROR = 8,         /* u.error */
    SN_WIRE_LEAVE = 9,         /* u.leave: clean leave */
    SN_WIRE_STATUS_REQ = 10,   /* u.status: dashboard asks a peer */
    SN_WIRE_STATUS = 11,       /* u.status: the answer, opaque JSON bytes */
    SN_WIRE_LOCK_ACQUIRE = 12, /* u.lock */
    SN_WIRE_LOCK_GRANT = 13,   /* u.lock */
    SN_WIRE_LOCK_EXTEND = 14,  /* u.lock */
    SN_WIRE_LOCK_RELEASE = 15, /* u.lock */
    SN_WIRE_CODE_MISS = 16,    /* u.code_miss */
    SN_WIRE_LOCK_DENY = 17,    /* u.lock */
    SN_WIRE_KIND_LAST = SN_WIRE_LOCK_DENY
} sn_wire_kind;

/* A member's state in GOSSIP / WELCOME. */
typedef enum sn_wire_state {
    SN_WIRE_ALIVE = 0,
    SN_WIRE_SUSPECT = 1,
    SN_WIRE_DOWN = 2,
    SN_WIRE_LEFT = 3
} sn_wire_state;

/* MESSAGE delivery mode, as the router maps the target prefix. */
typedef enum sn_wire_mode {
    SN_WIRE_ONE = 0,   /* sid:msg   one actor of the stage */
    SN_WIRE_ALL = 1,   /* *sid:msg  every actor of the stage */
    SN_WIRE_LOCAL = 2, /* =sid:msg  "local", as the router defines it */
    SN_WIRE_REMOTE = 3 /* +sid:msg  "remote", as the router defines it */
} sn_wire_mode;

/* REPLY status. */
typedef enum sn_wire_status {
    SN_WIRE_OK = 0,
    SN_WIRE_NO_ROUTE = 1,
    SN_WIRE_NODE_DOWN = 2,
    SN_WIRE_TIMEOUT = 3,
    SN_WIRE_MAILBOX_FULL = 4,
    SN_WIRE_FAILED = 5 /* the handler raised an error; text in error */
} sn_wire_status;

/* ERROR and LOCK_DENY codes. A u32 on the wire: codes unknown to this build are accepted. */
enum {
    SN_WIRE_E_PROTO = 1,     /* a frame could not be decoded */
    SN_WIRE_E_LIMIT = 2,     /* a frame was over a limit */
    SN_WIRE_E_VERSION = 3,   /* protocol version mismatch (sent in the sender's version) */
    SN_WIRE_E_KIND = 4,      /* frame kind unknown to the receiver */
    SN_WIRE_E_CLUSTER = 5,   /* HELLO from a node of another cluster */
    SN_WIRE_E_NAME = 6,      /* HELLO with a node name already in use by a live member */
    SN_WIRE_E_STALE = 7,     /* addressed to an incarnation that is gone */
    SN_WIRE_E_UNTRUSTED = 8, /* bytecode from a peer that is not authenticated */
    SN_WIRE_E_FULL = 9,      /* a bounded queue at the receiver is full */
    SN_WIRE_E_GAP = 10,      /* per-pair sequence gap detected */
    SN_WIRE_E_BUSY = 11,     /* lock held and its wait queue is full */
    SN_WIRE_E_INTERNAL = 12  /* anything else; see the text */
};

/* HELLO / WELCOME flags; bits not listed are 0 on send and ignored on receive. */
#define SN_WIRE_HELLO_WANTS_BYTECODE 0x1u /* sender will load bytecode sent to it */
#define SN_WIRE_HELLO_AUTHENTICATED                                                                \
    0x2u                              /* sender's side of the link runs CurveZMQ; advisory:        \
                                       * trust comes from the local ZAP result only */
#define SN_WIRE_HELLO_CODE_CACHE 0x4u /* sender understands hash-only functions + CODE_MISS */
/* MESSAGE / REPLY flags. */
#define SN_WIRE_MSG_BYTECODE 0x1u /* payload holds function bytecode (load only if trusted) */
#define SN_WIRE_MSG_HASHREF  0x2u /* payload names functions by hash only (may cause CODE_MISS) */

/* Strings: NUL-terminated, never NULL in a decoded frame ("" when absent). On encode NULL means
 * "". Bytes: data may be NULL when len is 0. */
typedef struct sn_wire_bytes {
    const void *data;
    size_t len;
} sn_wire_bytes;

typedef struct sn_wire_addr { /* an actor's address */
    const char *node;         /* node name; "" = any/unknown */
    uint64_t incarnation;     /* 0 = any incarnation (destinations only) */
    uint64_t actor;           /* actor id; 0 = chosen by the receiver (destinations only) */
    const char *stage;        /* stage id */
} sn_wire_addr;

typedef struct sn_wire_member { /* one member as the sender sees it */
    const char *name;           /* node name; must not be empty */
    const char *endpoint;       /* e.g. "tcp://10.0.0.5:7400" */
    const char *http;           /* "" = no HTTP server */
    uint64_t incarnation;
    sn_wire_state state;
    uint64_t version; /* SWIM state version: higher wins for the same incarnation */
} sn_wire_member;

typedef struct sn_wire_stage { /* one REGISTRY entry */
    const char *stage;         /* stage id; must not be empty */
    uint32_t actors;           /* actors of that stage on the sender */
} sn_wire_stage;

typedef struct sn_wire_hello { /* HELLO and WELCOME */
    const char *cluster;
    const char *node;
    uint64_t incarnation;          /* new each process start (e.g. boot time in us, or random) */
    uint32_t version;              /* highest protocol version the sender speaks */
    const char *endpoint;          /* advertised cluster endpoint */
    const char *http;              /* "" = none */
    uint32_t flags;                /* SN_WIRE_HELLO_* */
    const char *software;          /* e.g. "stage-node 0.1.0", for logs and the dashboard */
    const sn_wire_member *members; /* WELCOME only; ignored for HELLO */
    uint32_t nmembers;
} sn_wire_hello;

typedef struct sn_wire_heartbeat {
    const char *node;
    uint64_t incarnation;
    uint64_t counter;          /* +1 per heartbeat of this incarnation; 0: the answer to a
                                  probe (never answered itself) */
    uint64_t digest;           /* hash of the sender's member view; differs => gossip */
    uint64_t registry_version; /* sender's REGISTRY version; higher than known => ask */
} sn_wire_heartbeat;

typedef struct sn_wire_gossip {
    const char *node;
    uint64_t incarnation;
    const sn_wire_member *members;
    uint32_t nmembers;
} sn_wire_gossip;

typedef struct sn_wire_registry {
    const char *node;
    uint64_t incarnation;
    uint64_t version;            /* increases with every change of the sender's stages */
    const sn_wire_stage *stages; /* the full list */
    uint32_t nstages;
} sn_wire_registry;

typedef struct sn_wire_message {
    sn_wire_addr src;
    sn_wire_addr dst;
    sn_wire_mode mode;
    const char *msg_id;    /* handler id, e.g. "hello" or "main:hello" */
    const char *reply_id;  /* reply handler id; "" = none */
    uint64_t session;      /* 0 = no reply wanted */
    uint64_t seq;          /* per sender-node -> receiver-node pair */
    uint32_t flags;        /* SN_WIRE_MSG_* */
    sn_wire_bytes payload; /* snapshot bytes, opaque here */
} sn_wire_message;

typedef struct sn_wire_reply {
    sn_wire_addr dst;    /* node, incarnation, actor of the requester (stage ignored) */
    sn_wire_addr src;    /* who answered, for logs; may be empty */
    const char *handler; /* reply handler id */
    uint64_t session;
    sn_wire_status status;
    const char *error; /* "" unless status != OK */
    uint64_t seq;      /* same per-pair counter as MESSAGE */
    uint32_t flags;    /* SN_WIRE_MSG_* */
    sn_wire_bytes payload;
} sn_wire_reply;

typedef struct sn_wire_error {
    uint32_t code; /* SN_WIRE_E_* */
    const char *text;
    uint64_t seq;     /* the frame it is about, 0 = none */
    uint64_t session; /* 0 = none */
} sn_wire_error;

typedef struct sn_wire_leave {
    const char *node;
    uint64_t incarnation;
} sn_wire_leave;

typedef struct sn_wire_status_frame { /* STATUS_REQ and STATUS */
    const char *node;
    uint64_t incarnation;
    uint64_t request;      /* chosen by the asker, echoed in STATUS */
    sn_wire_bytes payload; /* STATUS only: JSON bytes */
} sn_wire_status_frame;

typedef struct sn_wire_lock { /* LOCK_ACQUIRE, _GRANT, _EXTEND, _RELEASE, _DENY; see WIRE.md */
    const char *lock;         /* lock name */
    sn_wire_addr addr;        /* requester (ACQUIRE, DENY) or holder (GRANT, EXTEND, RELEASE) */
    const char *handler;      /* ACQUIRE, GRANT: handler id run when granted */
    uint32_t ms;              /* ACQUIRE: hold wanted; GRANT: lease; EXTEND: extension */
    uint64_t token;           /* GRANT, EXTEND, RELEASE: fencing token, increases per grant */
    uint64_t request;         /* ACQUIRE, GRANT, DENY: requester's id for this acquire */
    uint32_t code;            /* DENY: SN_WIRE_E_* */
    const char *text;         /* DENY */
    sn_wire_bytes payload;    /* ACQUIRE, GRANT */
} sn_wire_lock;

typedef struct sn_wire_code_miss {
    uint8_t hash[SN_WIRE_HASH_LEN]; /* the bytecode hash the receiver did not have */
    uint64_t seq;                   /* the MESSAGE that referred to it, 0 = unknown */
} sn_wire_code_miss;

typedef struct sn_wire_arena sn_wire_arena; /* a decoded frame's memory; opaque */

/* One frame. Fill with sn_wire_frame_init + fields to encode; sn_wire_decode fills one.
 * Fields of the union member that the kind does not carry are ignored on encode, 0 on decode. */
typedef struct sn_wire_frame {
    sn_wire_kind kind;
    union {
        sn_wire_hello hello;
        sn_wire_heartbeat heartbeat;
        sn_wire_gossip gossip;
        sn_wire_registry registry;
        sn_wire_message message;
        sn_wire_reply reply;
        sn_wire_error error;
        sn_wire_leave leave;
        sn_wire_status_frame status;
        sn_wire_lock lock;
        sn_wire_code_miss code_miss;
    } u;
    sn_wire_arena *arena; /* owned by a decoded frame; NULL in frames the caller fills */
} sn_wire_frame;

/* Allocation swap point, lua_Alloc-shaped: nsize 0 frees and returns NULL, otherwise realloc. */
typedef void *(*sn_wire_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct sn_wire_limits {
    size_t max_frame;       /* whole frame, header included; longer input is SN_ELIMIT unparsed */
    size_t max_string;      /* each string */
    size_t max_payload;     /* each bin payload (also bounded by the frame) */
    uint32_t max_members;   /* entries of GOSSIP / WELCOME */
    uint32_t max_stages;    /* entries of REGISTRY */
    int max_depth;          /* SN_WIRE_DEPTH_MIN..SN_WIRE_DEPTH_MAX */
    sn_wire_alloc_fn alloc; /* decode's allocator; NULL = realloc/free */
    void *alloc_ud;
} sn_wire_limits;

/* sn_wire_limits_init: the defaults above, realloc/free. */
void sn_wire_limits_init(sn_wire_limits *lim);

/* sn_wire_frame_init: zeroes f and sets its kind; strings NULL (= ""), lists and bytes empty. */
void sn_wire_frame_init(sn_wire_frame *f, sn_wire_kind kind);
/* sn_wire_frame_fini: frees what a decode allocated (lim->alloc of that decode); f is zeroed.
 * Takes a frame that was only init'ed, a failed decode, or a fini'ed one. */
void sn_wire_frame_fini(sn_wire_frame *f);

/* sn_wire_encode: appends f as one frame to out. SN_OK; SN_EINVAL (unknown kind, an enum out of
 * range, NULL list or bytes with a count, an empty member or stage name); SN_ELIMIT (a string,
 * list, payload or the frame over lim, so a peer with the same limits never rejects it);
 * SN_ENOMEM. On error out is as it was and err says which field. lim NULL = defaults.
 * Reads f only during the call; any thread. */
int sn_wire_encode(const sn_wire_frame *f, const sn_wire_limits *lim, sn_buf *out, char *err,
                   size_t errlen);

/* sn_wire_encode_generic: sn_wire_encode through the field tables for every kind (it takes
 * a shorter path for MESSAGE that writes the same bytes; the tests compare the two). */
int sn_wire_encode_generic(const sn_wire_frame *f, const sn_wire_limits *lim, sn_buf *out,
                           char *err, size_t errlen);

/* sn_wire_decode: reads the frame in data[0..len) into f (overwritten: fini a frame that still
 * holds an earlier decode first).
 * Errors, in the order checked: SN_EINVAL bad lim; SN_EPROTO not a frame (magic); SN_ENOTSUP other
 * protocol version (message names both); SN_ELIMIT len over lim->max_frame; SN_ENOTSUP unknown
 * kind (a newer peer: drop the frame, not the peer); then SN_EPROTO malformed or truncated,
 * SN_ELIMIT a limit, SN_ENOMEM. err names the field and the byte offset. On error f holds nothing
 * (fini is optional). On success strings and lists live in f's arena until sn_wire_frame_fini;
 * bytes (payloads, never copied) point into data: f is valid while both live.
 * Never reads outside data[0..len); allocates at most 16 * len + 1 KiB. lim NULL = defaults.
 * Any thread. */
int sn_wire_decode(const char *data, size_t len, const sn_wire_limits *lim, sn_wire_frame *f,
                   char *err, size_t errlen);

/* sn_wire_decode_in: sn_wire_decode in one pass, its strings and lists in scratch[0..cap)
 * (aligned to 16; the caller's, reused frame after frame) instead of an allocation: then
 * f->arena is NULL and f is valid while scratch and data live. A frame that needs more than
 * cap, or does not decode, is decoded again as sn_wire_decode does (same results, same
 * errors). scratch NULL or cap 0: sn_wire_decode. Any thread. */
int sn_wire_decode_in(const char *data, size_t len, const sn_wire_limits *lim, sn_wire_frame *f,
                      void *scratch, size_t cap, char *err, size_t errlen);

/* sn_wire_peek: reads only bytes 0-2. SN_OK with *version and *kind; SN_ENOTSUP with *version
 * set (kind 0) if the version differs, or with both set if only the kind is unknown; SN_EPROTO
 * if shorter than the header or the magic is wrong. Allocates nothing; any thread. */
int sn_wire_peek(const char *data, size_t len, int *version, sn_wire_kind *kind);

/* sn_wire_equal: 1 if a and b have the same kind and the same values in every field that kind
 * carries (strings by content, NULL = ""), else 0. For tests and the fuzzer. */
int sn_wire_equal(const sn_wire_frame *a, const sn_wire_frame *b);

/* Names for logs and JSON: "HELLO", "alive", "one", "no_route"; "?" when out of range. Static. */
const char *sn_wire_kind_name(sn_wire_kind k);
const char *sn_wire_state_name(sn_wire_state s);
const char *sn_wire_mode_name(sn_wire_mode m);
const char *sn_wire_status_name(sn_wire_status s);

#endif
