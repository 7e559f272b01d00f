/* sn_broker: the door for clients: listeners and connections (tcp, ws, udp; tls, wss) on the
 * node's loop thread, whose events reach the owning actor as SN_MSG_BROKER messages. Owns every
 * socket, the limits and the per-listener counts; no Lua inside. */
#ifndef SN_BROKER_H
#define SN_BROKER_H

#include "sn_bwire.h"
#include "sn_log.h"
#include "sn_msg.h"
#include "sn_opts.h"

#include <stddef.h>
#include <stdint.h>

struct sn_node;
typedef struct sn_broker sn_broker;

/* The named limits (docs/broker.md); each is a --set broker_NAME=VALUE. */
typedef struct sn_broker_limits {
    size_t conns;          /* broker_conns: connections per node (100000) */
    size_t conns_listener; /* broker_conns_listener: per listener (65536) */
    size_t frame;          /* broker_frame: a frame's bytes when packet gives no IN (1m) */
    size_t message;        /* broker_message: a WebSocket message's bytes (1m) */
    size_t output;         /* broker_output: bytes queued to one socket (4m) */
    double handshake_ms;   /* broker_handshake: TLS handshake and WebSocket upgrade (5000) */
    double idle_ms;        /* broker_idle: default expiry of a silent socket, 0 none (0) */
} sn_broker_limits;

/* sn_broker_limits_default: the defaults above. */
void sn_broker_limits_default(sn_broker_limits *l);

/* Events, the name of each SN_MSG_BROKER message. */
#define SN_BEV_ACCEPT "accept"   /* a client connected to listener ev.listener */
#define SN_BEV_CONNECT "connect" /* a broker.join connection is up */
#define SN_BEV_DATA "data"       /* a frame, message, datagram or chunk of bytes */
#define SN_BEV_CLOSE "close"     /* closed: ev.err (an errno or 0), data = the reason */

/* TEXT: a WebSocket text message; MSGPACK: the payload is one MessagePack value (decoded for
 * the script; committed tables travel so); JSON: the socket speaks JSON text (?json). */
enum { SN_BROKER_F_TEXT = 1, SN_BROKER_F_MSGPACK = 2, SN_BROKER_F_JSON = 4 };
/* FRAMES (a data event of tcp://...?packet): data is up to SN_BROKER_BATCH whole frames, their
 * headers included, read from the socket together: one message (one post, one wake of the
 * owner) for all, each handed to the script in turn (sn_broker_frames_next). */
enum { SN_BROKER_F_FRAMES = 8, SN_BROKER_BATCH = 64 };

/* One event, read from an SN_MSG_BROKER message (pointers into it). */
typedef struct sn_broker_event {
    const char *what;        /* SN_BROKER_* */
    uint64_t socket;         /* the socket's id (m->handle) */
    uint64_t listener;       /* accept: the listener's id */
    unsigned flags;          /* SN_BROKER_F_* */
    int err;                 /* close: errno, or 0 */
    const void *peer, *local; /* sockaddr bytes (accept: both; udp data: peer), or NULL */
    size_t peer_len, local_len;
    const void *data;        /* the payload (close: the reason text) */
    size_t len;
} sn_broker_event;

/* sn_broker_event_read: *ev from m. SN_OK or SN_EPROTO (not a broker message). */
int sn_broker_event_read(const sn_msg *m, sn_broker_event *ev);

/* sn_broker_frames_next: the payload of the frame at *pos of a FRAMES event's data (*pos
 * starts at 0 and moves past it): 1, or 0 after the last one (or a frame cut short). */
int sn_broker_frames_next(const sn_broker_event *ev, size_t *pos, const void **p, size_t *len);

/* sn_broker_limits_of: the defaults, with what o's --set broker_* says (0: the default). */
void sn_broker_limits_of(const sn_opts *o, sn_broker_limits *l);

/* sn_broker_new: a broker on n's loop with the limits of o (sn_broker_limits_of). Raises
 * RLIMIT_NOFILE to its hard limit (logged at the first listen). NULL on out of memory
 * (logged). Main thread, before the node runs. */
sn_broker *sn_broker_new(struct sn_node *n, sn_log *log, const sn_opts *o);
/* sn_broker_destroy: closes every socket, frees all; NULL is fine; nulls *bp. Main thread,
 * after the loop stopped and the HTTP thread is gone. */
void sn_broker_destroy(sn_broker **bp);

/* sn_broker_tag: this node's tag, the high bits of every id it gives (20 bits, never 0). */
uint32_t sn_broker_tag(const sn_broker *b);
/* sn_broker_tag_of: the tag a node named name gives its ids. */
uint32_t sn_broker_tag_of(const char *name);
/* sn_broker_id_tag: the tag in id. */
static inline uint32_t sn_broker_id_tag(uint64_t id) { return (uint32_t)(id >> 32); }

/* sn_broker_listen: binds and listens (tcp, ws) or binds (udp) as u says, for actor. *id: the
 * listener's (udp: the socket's) id; bound (optional, *bound_len bytes of room): the address
 * it is bound to (port 0 picks one). SN_OK, or SN_EIO with *err_no and a reason in err.
 * Any thread. */
int sn_broker_listen(sn_broker *b, const sn_buri *u, uint64_t actor, uint64_t *id,
                     void *bound, size_t *bound_len, int *err_no, char *err, size_t errlen);
/* sn_broker_join: connects (tcp, tls, ws, wss) as u says, for actor; CONNECT (ws: once the
 * upgrade is answered) or CLOSE follows.
 * timeout_ms bounds the connect. SN_OK with *id, or SN_EIO as sn_broker_listen. */
int sn_broker_join(sn_broker *b, const sn_buri *u, uint64_t actor, double timeout_ms,
                   uint64_t *id, int *err_no, char *err, size_t errlen);

/* Operations on a socket by id, queued for the loop thread (any thread). */
typedef enum sn_broker_op {
    SN_BROKER_COMMIT = 1, /* send data (framed as the socket's transport says) */
    SN_BROKER_CLOSE,      /* close it; data: the reason */
    SN_BROKER_EXPIRE,     /* ms: idle expiry, 0 none */
    SN_BROKER_INTERVAL,   /* ms: commit batching interval, 0 at once */
    SN_BROKER_INJECT      /* data arrives as if the peer had sent it */
} sn_broker_op;

/* sn_broker_op: queues op on the local socket id; flags SN_BROKER_F_TEXT for ws text; addr
 * (udp: the datagram's destination) may be NULL. SN_OK, SN_ENOENT (not one of this node's
 * ids), SN_ENOMEM. An unknown or closed socket is ignored on the loop thread. */
int sn_broker_op_queue(sn_broker *b, sn_broker_op op, uint64_t id, unsigned flags, double ms,
                       const void *data, size_t len, const void *addr, size_t addrlen);

/* A batch: operations on this node's sockets gathered by one thread and queued together as one
 * command (one wake of the loop thread), run in the order added: a script's commits while it
 * handles one message. Zeroed is empty; the caller owns it. */
typedef struct sn_broker_batch {
    unsigned char *buf; /* a command under construction, NULL when empty */
    size_t len, cap, n;
} sn_broker_batch;

/* sn_broker_batch_add: op as sn_broker_op_queue takes it, appended to q. SN_OK, SN_ENOENT (not
 * one of this node's ids; q unchanged), SN_ENOMEM (q unchanged). */
int sn_broker_batch_add(sn_broker *b, sn_broker_batch *q, sn_broker_op op, uint64_t id,
                        unsigned flags, double ms, const void *data, size_t len,
                        const void *addr, size_t addrlen);
/* sn_broker_batch_send: queues what q holds for the loop thread; q is empty after. Any thread. */
void sn_broker_batch_send(sn_broker *b, sn_broker_batch *q);
/* sn_broker_batch_fini: drops what q holds unsent and frees it. */
void sn_broker_batch_fini(sn_broker_batch *q);

/* sn_broker_remote_pack: the payload that carries an operation to the node owning id
 * (caller frees *out). sn_broker_remote_run: runs such a payload here. SN_OK / SN_EPROTO. */
int sn_broker_remote_pack(sn_broker_op op, uint64_t id, unsigned flags, double ms,
                          const void *data, size_t len, const void *addr, size_t addrlen,
                          void **out, size_t *outlen);
int sn_broker_remote_run(sn_broker *b, const void *payload, size_t len);
/* The internal stage every node's broker answers for (never an actor's). */
#define SN_BROKER_STAGE "#broker"

/* Per-listener counts, for the views. Close reasons are counted by index. */
enum {
    SN_BCLOSE_PEER, SN_BCLOSE_LOCAL, SN_BCLOSE_ERROR, SN_BCLOSE_OVERSIZE, SN_BCLOSE_PROTOCOL,
    SN_BCLOSE_UTF8, SN_BCLOSE_HANDSHAKE, SN_BCLOSE_IDLE, SN_BCLOSE_SLOW, SN_BCLOSE_OWNER,
    SN_BCLOSE_LIMIT, SN_BCLOSE_SHUTDOWN, SN_BCLOSE_DECODE, SN_BCLOSE_TLS, SN_BCLOSE_N
};
/* sn_broker_reason_name: "peer", "local", ..., the label of a close reason index. */
const char *sn_broker_reason_name(int reason);

typedef struct sn_broker_stats {
    char uri[600];
    uint64_t id, actor;
    uint64_t open, accepted, bytes_in, bytes_out, frames_in, frames_out, queued_out;
    uint64_t closed[SN_BCLOSE_N];
    uint64_t paused; /* times reading stopped on a full mailbox */
} sn_broker_stats;

/* sn_broker_stats_get: the counts of every listener (joined sockets count under one entry
 * "join") into *v (caller frees); returns how many. Any thread. */
size_t sn_broker_stats_get(sn_broker *b, sn_broker_stats **v);
/* sn_broker_open_total: connections open on this node. Any thread. */
size_t sn_broker_open_total(sn_broker *b);

#endif
