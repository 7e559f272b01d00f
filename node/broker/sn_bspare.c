/* sn_bspare: batch buffers (sn_broker_batch) of the first size, given back by the loop thread
 * once it ran their batch and taken by the next batch on any thread, in a few lock-free slots:
 * no malloc on a worker and free on the loop per batch (see sn_bconn.h, struct sn_broker). */
#include "sn_bconn.h"

#include <stdlib.h>

unsigned char *sn_bspare_take(sn_broker *b)
{
    unsigned char *p = NULL;
    for (int i = 0; i < SN_BROKER_SPARES && !p; i++)
        if (atomic_load_explicit(&b->spare[i], memory_order_relaxed))
            p = atomic_exchange(&b->spare[i], NULL);
    return p;
}

void sn_bspare_give(sn_broker *b, unsigned char *p, size_t cap)
{
    for (int i = 0; i < SN_BROKER_SPARES && cap == SN_BROKER_BATCH_CAP; i++) {
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
