/* sn_bspare: batch buffers (sn_broker_batch) given back by the loop thread once it ran their
 * batch and taken by the next batch on any thread, in a few lock-free slots: no malloc on a
 * worker and free on the loop per batch (see sn_bconn.h, struct sn_broker). A buffer keeps
 * the size it grew to (a turn's answers to many messages need tens of KiB: grown from the
 * first size each time, it was copied at every doubling); the size is written in its first
 * bytes while it waits in a slot. */
#include "sn_bconn.h"

#include <stdlib.h>
#include <string.h>

unsigned char *sn_bspare_take(sn_broker *b, size_t *cap)
{
    unsigned char *p = NULL;
    for (int i = 0; i < SN_BROKER_SPARES && !p; i++)
        if (atomic_load_explicit(&b->spare[i], memory_order_relaxed))
            p = atomic_exchange(&b->spare[i], NULL);
    if (p)
        memcpy(cap, p, sizeof *cap);
    return p;
}

void sn_bspare_give(sn_broker *b, unsigned char *p, size_t cap)
{
    if (cap >= SN_BROKER_BATCH_CAP && cap <= SN_BROKER_SPARE_MAX)
        memcpy(p, &cap, sizeof cap);
    for (int i = 0; i < SN_BROKER_SPARES && cap >= SN_BROKER_BATCH_CAP &&
                    cap <= SN_BROKER_SPARE_MAX; i++) {
        unsigned char *none = NULL;
        if (atomic_compare_exchange_strong(&b->spare[i], &none, p))
            return;
    }
    free(p);
}

void sn_bspare_free(sn_broker *b)
{
    for (int i = 0; i < SN_BROKER_SPARES; i++)
        free(atomic_exchange(&b->spare[i], NULL));
}
