/* sn_link: encode once into a reused buffer, send, count. */
#include "sn_link.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct sn_link {
    sn_transport *tr;
    sn_log *log;
    sn_wire_limits lim;
    sn_buf enc;
    pthread_mutex_t io;
    _Atomic uint64_t bytes_in, bytes_out, frames_in, frames_out;
};

sn_link *sn_link_new(sn_transport *t, size_t frame_max, sn_log *log)
{
    sn_link *l = calloc(1, sizeof *l);
    if (!l) {
        sn_transport_destroy(&t);
        return NULL;
    }
    l->tr = t;
    l->log = log;
    sn_wire_limits_init(&l->lim);
    l->lim.max_frame = frame_max;
    l->lim.max_payload = frame_max;
    sn_buf_init(&l->enc);
    pthread_mutex_init(&l->io, NULL);
    return l;
}

void sn_link_destroy(sn_link **lp)
{
    if (!lp || !*lp)
        return;
    sn_link *l = *lp;
    sn_transport_destroy(&l->tr);
    sn_buf_fini(&l->enc);
    pthread_mutex_destroy(&l->io);
    free(l);
    *lp = NULL;
}

void sn_link_lock(sn_link *l)
{
    pthread_mutex_lock(&l->io);
}

void sn_link_unlock(sn_link *l)
{
    pthread_mutex_unlock(&l->io);
}

int sn_link_trylock(sn_link *l)
{
    return pthread_mutex_trylock(&l->io) == 0;
}

sn_transport *sn_link_transport(sn_link *l)
{
    return l->tr;
}

sn_log *sn_link_log(sn_link *l)
{
    return l->log;
}

const sn_wire_limits *sn_link_limits(const sn_link *l)
{
    return &l->lim;
}

sn_buf *sn_link_buf(sn_link *l)
{
    return &l->enc;
}

int sn_link_encode(sn_link *l, const sn_wire_frame *f)
{
    char err[256];
    sn_buf_reset(&l->enc);
    int rc = sn_wire_encode(f, &l->lim, &l->enc, err, sizeof err);
    if (rc != SN_OK)
        sn_log_write(l->log, SN_LOG_ERROR, "cluster", "cannot encode %s: %s",
                     sn_wire_kind_name(f->kind), err);
    return rc;
}

static int counted_len(sn_link *l, int rc, size_t len)
{
    if (rc == SN_OK) {
        atomic_fetch_add(&l->bytes_out, len);
        atomic_fetch_add(&l->frames_out, 1);
    }
    return rc;
}

static int counted(sn_link *l, int rc)
{
    return counted_len(l, rc, l->enc.len);
}

int sn_link_send_encoded(sn_link *l, sn_conn *conn)
{
    return counted(l, sn_transport_send(l->tr, conn, l->enc.data, l->enc.len));
}

int sn_link_send_bytes(sn_link *l, sn_conn *conn, const void *data, size_t len)
{
    return counted_len(l, sn_transport_send(l->tr, conn, data, len), len);
}

int sn_link_send(sn_link *l, sn_conn *conn, const sn_wire_frame *f)
{
    int rc = sn_link_encode(l, f);
    return rc == SN_OK ? sn_link_send_encoded(l, conn) : rc;
}

int sn_link_answer_encoded(sn_link *l, const void *id, size_t idlen)
{
    return counted(l, sn_transport_answer(l->tr, id, idlen, l->enc.data, l->enc.len));
}

int sn_link_answer(sn_link *l, const void *id, size_t idlen, const sn_wire_frame *f)
{
    int rc = sn_link_encode(l, f);
    return rc == SN_OK ? sn_link_answer_encoded(l, id, idlen) : rc;
}

void sn_link_received(sn_link *l, size_t len)
{
    atomic_fetch_add(&l->bytes_in, len);
    atomic_fetch_add(&l->frames_in, 1);
}

void sn_link_counts(sn_link *l, uint64_t *bytes_in, uint64_t *bytes_out, uint64_t *frames_in,
                    uint64_t *frames_out)
{
    *bytes_in = atomic_load(&l->bytes_in);
    *bytes_out = atomic_load(&l->bytes_out);
    *frames_in = atomic_load(&l->frames_in);
    *frames_out = atomic_load(&l->frames_out);
}
