/* sn_link: the cluster's way onto the wire: the transport, one encode buffer reused for every
 * frame, the wire limits, and the byte and frame counters. Loop thread (the counters may be
 * read from any thread). */
#ifndef SN_LINK_H
#define SN_LINK_H

#include "sn_buf.h"
#include "sn_log.h"
#include "sn_transport.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sn_link sn_link;

/* sn_link_lock / sn_link_unlock / sn_link_trylock: the right to use the transport, its
 * connections and the encode buffer. The loop thread holds it while it handles the cluster
 * (a drain, a flush, a tick); another thread may take it (trylock: 1 when taken) to send at
 * once while the loop thread is idle. */
void sn_link_lock(sn_link *l);
void sn_link_unlock(sn_link *l);
int sn_link_trylock(sn_link *l);

/* sn_link_new: over t (consumed, also on failure), with frame_max as the frame and payload
 * limit. NULL on out of memory. */
sn_link *sn_link_new(sn_transport *t, size_t frame_max, sn_log *log);
/* sn_link_destroy: destroys the transport too; NULL is fine; nulls *lp. */
void sn_link_destroy(sn_link **lp);

sn_transport *sn_link_transport(sn_link *l);
sn_log *sn_link_log(sn_link *l);
const sn_wire_limits *sn_link_limits(const sn_link *l);
/* sn_link_buf: the encode buffer (for an encoder of its own; then sn_link_send_encoded). */
sn_buf *sn_link_buf(sn_link *l);

/* sn_link_encode: f into the buffer. SN_OK, or the encoder's error (logged). */
int sn_link_encode(sn_link *l, const sn_wire_frame *f);
/* sn_link_send_encoded: the buffer's frame on conn (NULL: SN_ENOENT); counted when sent. */
int sn_link_send_encoded(sn_link *l, sn_conn *conn);
/* sn_link_send_bytes: data[0..len) (an encoded frame or batch) on conn; counted when sent. */
int sn_link_send_bytes(sn_link *l, sn_conn *conn, const void *data, size_t len);
/* sn_link_send: encode and send on conn. */
int sn_link_send(sn_link *l, sn_conn *conn, const sn_wire_frame *f);
/* sn_link_answer: encode and send back to the sender identity id on the listening socket.
 * sn_link_answer_encoded: the buffer's frame (sn_link_encode) sent back the same way. */
int sn_link_answer(sn_link *l, const void *id, size_t idlen, const sn_wire_frame *f);
int sn_link_answer_encoded(sn_link *l, const void *id, size_t idlen);
/* sn_link_received: counts a frame of len bytes that came in. */
void sn_link_received(sn_link *l, size_t len);
/* sn_link_counts: bytes and frames in and out so far. Any thread. */
void sn_link_counts(sn_link *l, uint64_t *bytes_in, uint64_t *bytes_out, uint64_t *frames_in,
                    uint64_t *frames_out);

#endif
