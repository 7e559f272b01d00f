/* sn_bconn: the broker's own records (a listener, a connection) and what its files share:
 * sn_broker.c (the API, commands, the sweep), sn_bconn.c (a connection's I/O), sn_bdeliver.c
 * (its events to the owner), sn_bws.c (WebSocket over wslay), sn_btls.c (TLS). Loop thread
 * only, except the listener's atomic counts and the spare buffers. */
#ifndef SN_BCONN_H
#define SN_BCONN_H

#include "sn_broker.h"
#include "sn_btls.h"

#include "sn_buf.h"

#include "sn_loop.h"
#include "sn_map.h"

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

/* Batch buffers kept for reuse per broker: as many as a burst of batches had queued for the
 * loop thread at once, at most SPARES, each of BATCH_CAP (the first size) to SPARE_MAX bytes
 * (a larger one is freed): 8 MiB at the very most, a few buffers in practice. */
enum { SN_BROKER_SPARES = 64, SN_BROKER_BATCH_CAP = 4096, SN_BROKER_SPARE_MAX = 128 * 1024 };

typedef struct blistener {
    struct blistener *next; /* the broker's list (under its mutex) */
    sn_broker *b;
    uint64_t id, actor;
    sn_buri u;
    char uri[600];
    int fd;
    ev_io io;
    ev_timer pause; /* accept paused after EMFILE */
    int closed;
    size_t in_max, out_max; /* frame limits (tcp packet) */
    struct sockaddr_storage addr; /* bound to (a restarted owner may bind it again) */
    socklen_t addrlen;
    _Atomic uint64_t open, accepted, bytes_in, bytes_out, frames_in, frames_out, queued_out;
    _Atomic uint64_t closed_n[SN_BCLOSE_N], paused;
    uint64_t q_acc; /* loop thread: the sweep's sum of queued output */
} blistener;

enum { BC_CONNECTING = 1, BC_HANDSHAKE, BC_OPEN };

/* An IPv4 or IPv6 address (the broker speaks nothing else): 28 bytes, not a sockaddr_storage's
 * 128, twice in every connection. */
typedef union baddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} baddr;

/* One per connection, 10,000s of them on a busy node: what is rarely used is behind a pointer
 * (TLS, WebSocket) or a small field, so that an idle connection costs little. */
typedef struct bconn {
    sn_broker *b;
    blistener *l;
    uint64_t id, actor;
    int fd, err;
    unsigned char kind;   /* sn_buri_kind */
    unsigned char packet, decode; /* decode: SN_BROKER_F_MSGPACK / _JSON */
    unsigned char state, reason;
    unsigned char paused, dead, eof;
    unsigned char hint;    /* ws: the reason of the close frame we queued, + 1 (0: by its code) */
    unsigned char wsclose; /* ws: our close frame went out: its reason + 1; then we drain to EOF */
    unsigned char dirty;   /* in the broker's list of sockets to write before the loop waits */
    unsigned char posting; /* in the broker's list of sockets whose events it posts then */
    unsigned char tls_hs;     /* the TLS handshake is not done yet */
    unsigned char tls_rw;     /* a TLS read waits for writability */
    unsigned char tls_broken; /* a TLS error: no close_notify */
    unsigned char peer_len, local_len;
    ev_io rio, wio;
    ev_timer retry, flush;
    float retry_s, expire_ms, commit_ms;
    double last_io, deadline;
    unsigned char *in;   /* tcp packet / ws handshake input */
    size_t in_len, in_cap, in_off;
    unsigned char *out;  /* bytes waiting for the socket (tcp, and the 101 answer) */
    size_t out_len, out_off, out_cap;
    wslay_event_context_ptr ws;
    sn_msg *pend, *pend_tail; /* events not posted yet: until the loop's flush, or until
                               * a full mailbox has room (sn_bdeliver.c) */
    const char *wswhy; /* ws: what our close frame said (a constant text) */
    char *ws_accept; /* a ws:// join during its upgrade: the Sec-WebSocket-Accept we expect */
    struct ssl_st *ssl; /* tls://, wss://: the session (sn_btls.c), else NULL */
    baddr peer, local;
} bconn;

struct sn_broker {
    struct sn_node *node;
    sn_loop *loop;
    struct ev_loop *ev;
    sn_log *log;
    sn_broker_limits lim;
    uint32_t tag;
    _Atomic uint32_t next;
    pthread_mutex_t mu;       /* the listener list (the views read it) */
    blistener *listeners;
    blistener joins;          /* counts of broker.join sockets */
    sn_map *socks;            /* loop thread: id -> bconn */
    sn_map *lids;             /* loop thread: id -> blistener */
    ev_timer sweep;
    _Atomic size_t open;
    double limit_logged;
    unsigned long long nofile, nofile_was; /* RLIMIT_NOFILE after and before raising it */
    atomic_int limits_logged;
    struct sn_btls *tls;      /* the TLS contexts (sn_btls.c) */
    /* Commits are written once per loop iteration, not once each: the ids of the sockets
     * with output queued since the loop last waited, written by `flusher` (an ev_prepare). */
    ev_prepare flusher;
    sn_buf dirty; /* socket ids (sn_bconn_ids_push) */
    /* Events are posted once per loop iteration too (sn_bdeliver.c): the ids of the sockets
     * with events waiting since the loop last waited. While there are any, a libev
     * reference is held, so the loop runs to the flush. */
    sn_buf posts;
    /* Bytes of buffers freed by sn_bconn_trim since the sweep last gave free heap back to the
     * OS (malloc_trim, once TRIM_AFTER is reached: after a burst, not at every free). */
    size_t trimmed;
    /* Batch buffers (sn_broker_batch) of the first size, back from the loop thread for the
     * next batch instead of freed: a 4 KiB malloc on the worker, freed on the loop, cost
     * about 1,000 instructions a batch and emptied the worker's fast bins (glibc consolidates
     * them at every request that size), which then slowed each Lua string's malloc. */
    _Atomic(unsigned char *) spare[SN_BROKER_SPARES];
    /* sn_bconn_now's clock, read once per loop iteration (now_iter: libev's count then). */
    double now;
    unsigned now_iter;
};

/* Shared by sn_broker.c, sn_bconn.c and sn_bws.c (loop thread). */
/* sn_bconn_ids_push: id appended to a list of socket ids (b->dirty, b->posts). 0, or -1
 * out of memory (list unchanged). sn_bconn_ids_n / sn_bconn_ids_at: its length, its i-th. */
static inline int sn_bconn_ids_push(sn_buf *list, uint64_t id)
{
    if (sn_buf_reserve(list, sizeof id))
        return -1;
    memcpy(list->data + list->len, &id, sizeof id);
    list->len += sizeof id;
    return 0;
}
static inline size_t sn_bconn_ids_n(const sn_buf *list) { return list->len / sizeof(uint64_t); }
static inline uint64_t sn_bconn_ids_at(const sn_buf *list, size_t i)
{
    uint64_t id;
    memcpy(&id, list->data + i * sizeof id, sizeof id);
    return id;
}
/* sn_bconn_now: monotonic seconds as of this loop iteration (one clock read per iteration,
 * not one per read and commit): for the idle clock (last_io), which the sweep reads at 1 s. */
double sn_bconn_now(sn_broker *b);
uint64_t sn_bconn_new_id(sn_broker *b);
/* sn_bconn_new: a connection on fd (owned from now), registered under id. NULL: ENOMEM. */
bconn *sn_bconn_new(sn_broker *b, blistener *l, int fd, uint64_t id, uint64_t actor,
                    const sn_buri *u);
sn_msg *sn_bconn_event_new(const char *what, uint64_t socket, uint64_t listener, unsigned flags,
                           int err, const void *peer, size_t plen, const void *local,
                           size_t llen, const void *data, size_t len);
/* sn_bdeliver.c: events to the owner. sn_bconn_deliver: m queued behind c's other events, to
 * be posted before the loop next waits (force: a close or connect, which takes no one's place
 * in the mailbox). sn_bdeliver_flush: posts them (the broker's ev_prepare); a socket whose
 * owner's mailbox is full stops reading until sn_bconn_on_retry (its retry timer) posts
 * what waits. */
void sn_bconn_deliver(bconn *c, sn_msg *m, int force);
void sn_bdeliver_flush(sn_broker *b);
void sn_bconn_on_retry(struct ev_loop *ev, ev_timer *w, int revents);
void sn_bconn_done(bconn *c);
void sn_bconn_read(bconn *c);
void sn_bconn_accepted(bconn *c);
void sn_bconn_connected(bconn *c);
void sn_bconn_on_accept(struct ev_loop *ev, ev_io *w, int revents);
void sn_bconn_on_unpause(struct ev_loop *ev, ev_timer *w, int revents);
/* sn_bconn_commit: data out as c's transport frames it (udp: to addr). */
void sn_bconn_commit(bconn *c, unsigned flags, const void *data, size_t len, const void *addr,
                     size_t addrlen);
void sn_bconn_set_interval(bconn *c, double ms);
/* sn_bconn_flush_later: c's queued output (tcp, ws) goes out before the loop next waits, with
 * whatever else is committed to c until then: one write for a batch of commits. */
void sn_bconn_flush_later(bconn *c);
/* sn_bconn_on_prepare: the broker's flusher: writes the output of every socket so marked. */
void sn_bconn_on_prepare(struct ev_loop *ev, ev_prepare *w, int revents);
/* sn_bconn_trim: frees the buffers of a connection that holds no bytes in them (an idle one
 * costs no buffer memory). */
void sn_bconn_trim(bconn *c);

/* sn_bconn_recv / sn_bconn_send: the connection's bytes, through TLS when it has it; as
 * recv/send (never SIGPIPE); more: more of the same frame follows (plain tcp: MSG_MORE). */
ssize_t sn_bconn_recv(bconn *c, void *buf, size_t len);
ssize_t sn_bconn_send(bconn *c, const void *buf, size_t len, int more);
/* sn_bconn_shutdown_wr: no more output (TLS: close_notify first). */
void sn_bconn_shutdown_wr(bconn *c);
/* sn_bconn_tls_up: the TLS handshake is done: the connection goes on (a join: connected; a
 * tls:// client: accepted; a wss:// client: its upgrade request is read). */
void sn_bconn_tls_up(bconn *c);

void sn_bconn_close(bconn *c, int reason, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sn_bconn_event(bconn *c, const char *what, unsigned flags, const void *data, size_t len,
                    const void *peer, size_t peer_len);
int sn_bconn_paused(const bconn *c);
void sn_bconn_want_write(bconn *c);
sn_log *sn_bconn_log(const bconn *c);
const sn_broker_limits *sn_bconn_limits(const bconn *c);

/* sn_bspare.c: the broker's spare batch buffers (b->spare). sn_bspare_take: one (its size in
 * *cap) or NULL; sn_bspare_give: p of cap bytes kept as a spare (from SN_BROKER_BATCH_CAP to
 * SN_BROKER_SPARE_MAX bytes, while there is room) or freed; sn_bspare_free: frees them all.
 * Any thread, but sn_bspare_free after the last batch. */
unsigned char *sn_bspare_take(sn_broker *b, size_t *cap);
void sn_bspare_give(sn_broker *b, unsigned char *p, size_t cap);
void sn_bspare_free(sn_broker *b);

/* sn_bws.c: the WebSocket side of a connection. */
/* sn_bws_handshake: input while in BC_HANDSHAKE; may move c to BC_OPEN or close it. */
void sn_bws_handshake(bconn *c);
/* sn_bws_client_prepare: a ws:// join's upgrade request (with a random key) into c->out, the
 * answer it expects in c->ws_accept. SN_OK, SN_ENOMEM or SN_EIO (no random bytes). */
int sn_bws_client_prepare(bconn *c, const sn_buri *u);
/* sn_bconn_joined: a join is up (connected; TLS and the WebSocket upgrade done): CONNECT. */
void sn_bconn_joined(bconn *c);
/* sn_bws_read: readable (or resumed) in BC_OPEN. sn_bws_write: writable. */
void sn_bws_read(bconn *c);
void sn_bws_write(bconn *c);
/* sn_bws_commit: queues one message (text or binary); sn_bws_close: a close frame. */
/* flags: SN_BROKER_F_TEXT, or SN_BROKER_F_MSGPACK (JSON text on a ?json socket, else binary). */
void sn_bws_commit(bconn *c, unsigned flags, const void *data, size_t len);
void sn_bws_close(bconn *c, uint16_t code, const char *reason);
/* sn_bws_goodbye: a close frame (code, reason) sent once without waiting, before the broker
 * drops the connection itself (owner gone, idle, shutdown): browsers learn why. */
void sn_bws_goodbye(bconn *c, uint16_t code, const char *reason);
/* sn_bws_queued: bytes wslay holds for the peer. sn_bws_free: frees the context. */
size_t sn_bws_queued(bconn *c);
void sn_bws_free(bconn *c);

#endif
