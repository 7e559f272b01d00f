/* sn_wire_batch: the BATCH frame, many frames for one peer in one ZeroMQ message (WIRE.md,
 * "18 BATCH"). Owns the batch's layout only; what may travel inside one is the cluster's rule. */
#ifndef SN_WIRE_BATCH_H
#define SN_WIRE_BATCH_H

#include "sn_buf.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

#define SN_WIRE_BATCH        18             /* kind byte; not in sn_wire's field table */
#define SN_WIRE_BATCH_MAX    (64u * 1024)   /* default most bytes of one batch (--set batch_max) */
#define SN_WIRE_HELLO_BATCH  0x8u           /* HELLO/WELCOME flag: the sender reads BATCH */

/* The encoder: embed, sn_wire_batch_init, then per batch add... finish, reset. One owner. */
typedef struct sn_wire_batch {
    sn_buf buf;      /* a reserved prefix, then the entries (bin header + frame) */
    uint32_t count;  /* entries so far */
    size_t first_at; /* where the first entry's frame starts (a batch of one goes bare) */
    size_t first_len;
} sn_wire_batch;

void sn_wire_batch_init(sn_wire_batch *b);
void sn_wire_batch_fini(sn_wire_batch *b);
/* sn_wire_batch_reset: empty again, keeping the memory. */
void sn_wire_batch_reset(sn_wire_batch *b);
/* sn_wire_batch_size: the bytes the batch would take on the wire with one more entry of len
 * bytes (len 0: as it is). Pure. */
size_t sn_wire_batch_size(const sn_wire_batch *b, size_t len);
/* sn_wire_batch_add: appends one encoded frame (copied). SN_OK, SN_ENOMEM (b unchanged). */
int sn_wire_batch_add(sn_wire_batch *b, const void *frame, size_t len);
/* sn_wire_batch_finish: the bytes to send, pointing into b (valid until the next add or
 * reset). One entry: that frame alone, no BATCH around it; none: *len = 0. */
void sn_wire_batch_finish(sn_wire_batch *b, const char **data, size_t *len);

/* The reader: sn_wire_batch_open checks the whole batch first (nothing is handed out of a
 * batch that does not decode), then sn_wire_batch_next hands out the frames in order. */
typedef struct sn_wire_batch_reader {
    const uint8_t *p, *end;
    uint32_t left;
} sn_wire_batch_reader;

/* sn_wire_batch_is: 1 if data is a BATCH frame of this version (by its header only). Pure. */
int sn_wire_batch_is(const char *data, size_t len);
/* sn_wire_batch_open: checks a BATCH frame against lim (max_frame, max_depth for unknown
 * fields): SN_OK with r ready, SN_ELIMIT (over max_frame), SN_EPROTO (malformed: not a map of
 * field numbers, field 1 twice or not an array of bin, an entry that is not a frame of this
 * version, or a BATCH inside a BATCH); err says what and at which byte. The frames point
 * into data. */
int sn_wire_batch_open(const char *data, size_t len, const sn_wire_limits *lim,
                       sn_wire_batch_reader *r, char *err, size_t errlen);
/* sn_wire_batch_next: the next frame in *frame, *len; 0 when there are no more. */
int sn_wire_batch_next(sn_wire_batch_reader *r, const char **frame, size_t *len);

#endif
