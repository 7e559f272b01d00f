/* sn_mailbox: a lock-free multi-producer, single-consumer FIFO. Senders push onto an
 * intrusive stack with one compare-and-swap; the worker running the actor takes the whole
 * stack at once (one exchange) and reverses it into its own FIFO, so a sender and the
 * receiver share one pointer and no lock (a lock here made a flood between two workers
 * sleep on it, issue 17). The bounds are counters reserved with compare-and-swap before
 * the message is queued, so the mailbox never holds more than they allow; the `scheduled`
 * flag makes sure an actor is in the run queue at most once, set only on idle -> runnable. */
#include "sn_mailbox.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum { OVERLOAD_FIRST = 1024, FULL_TELL_EVERY_S = 10 };

typedef enum bound { ROOM = 0, BOUND_COUNT, BOUND_BYTES, BOUND_MEMORY } bound;

struct sn_mailbox {
    _Atomic(sn_msg *) inbox; /* pushed and not yet taken, newest first; any thread */
    sn_msg *head;            /* taken, oldest first; only the consumer */
    _Atomic size_t len;      /* messages queued (inbox + head) */
    _Atomic size_t counted;  /* messages queued without force: what cap bounds */
    _Atomic size_t counted_bytes; /* bytes of those: what cap_bytes bounds */
    _Atomic size_t bytes;    /* bytes of all queued messages (forced ones included) */
    _Atomic size_t peak;     /* the longest it has been */
    _Atomic size_t overload; /* next length that triggers a warning */
    atomic_int scheduled;    /* in the run queue or running on a worker */
    size_t cap, cap_bytes;
    _Atomic size_t *heap;    /* the actor's VM bytes, or NULL */
    size_t memory_cap;       /* heap + bytes stay within it; 0: no bound */
    pthread_mutex_t lock;    /* the refusal record below only: refusals are the cold path */
    bound full;              /* the bound that refused the latest push */
    size_t refused;          /* pushes refused since sn_mailbox_full last told */
    double told_at;          /* when it last told (monotonic s) */
    size_t full_size, full_heap; /* the refused message's size, the heap then */
};

sn_mailbox *sn_mailbox_new(size_t cap, size_t cap_bytes)
{
    sn_mailbox *mb = calloc(1, sizeof *mb);
    if (!mb)
        return NULL;
    pthread_mutex_init(&mb->lock, NULL);
    atomic_init(&mb->inbox, NULL);
    atomic_init(&mb->len, 0);
    atomic_init(&mb->counted, 0);
    atomic_init(&mb->counted_bytes, 0);
    atomic_init(&mb->bytes, 0);
    atomic_init(&mb->peak, 0);
    atomic_init(&mb->overload, OVERLOAD_FIRST);
    atomic_init(&mb->scheduled, 0);
    mb->cap = cap;
    mb->cap_bytes = cap_bytes;
    mb->told_at = -1e9;
    return mb;
}

void sn_mailbox_govern(sn_mailbox *mb, _Atomic size_t *heap, size_t memory_cap)
{
    mb->heap = heap;
    mb->memory_cap = memory_cap;
}

static void free_list(sn_msg *m)
{
    while (m) {
        sn_msg *next = m->next;
        sn_msg_destroy(&m);
        m = next;
    }
}

void sn_mailbox_destroy(sn_mailbox **mbp)
{
    if (!mbp || !*mbp)
        return;
    sn_mailbox *mb = *mbp;
    free_list(mb->head);
    free_list(atomic_load(&mb->inbox));
    pthread_mutex_destroy(&mb->lock);
    free(mb);
    *mbp = NULL;
}

/* Adds one to *counter unless it is at limit: 0 then. */
static int reserve_one(_Atomic size_t *counter, size_t limit)
{
    size_t c = atomic_load_explicit(counter, memory_order_relaxed);
    do {
        if (c >= limit)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(counter, &c, c + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

/* Adds size to *counter unless that takes it past limit: 0 then. */
static int reserve_bytes(_Atomic size_t *counter, size_t size, size_t limit)
{
    size_t c = atomic_load_explicit(counter, memory_order_relaxed);
    do {
        if (size > limit || c > limit - size)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(counter, &c, c + size, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

/* The queued bytes with the actor's heap stay within memory_cap: adds size to mb->bytes
 * unless that would pass it; 0 then, with the heap read in *heap. */
static int reserve_memory(sn_mailbox *mb, size_t size, size_t *heap)
{
    *heap = mb->heap ? atomic_load_explicit(mb->heap, memory_order_relaxed) : 0;
    if (!mb->memory_cap) {
        atomic_fetch_add_explicit(&mb->bytes, size, memory_order_relaxed);
        return 1;
    }
    if (*heap >= mb->memory_cap)
        return 0;
    return reserve_bytes(&mb->bytes, size, mb->memory_cap - *heap);
}

/* Reserves a non-forced message's place in all three bounds, or none: the bound that
 * refused. A push that is refused may for a moment have held a place a concurrent push
 * then found taken: that one is refused too, never the other way round (no bound passed). */
static bound reserve(sn_mailbox *mb, size_t size, size_t *heap)
{
    *heap = 0;
    if (!reserve_one(&mb->counted, mb->cap))
        return BOUND_COUNT;
    if (!reserve_bytes(&mb->counted_bytes, size, mb->cap_bytes)) {
        atomic_fetch_sub_explicit(&mb->counted, 1, memory_order_relaxed);
        return BOUND_BYTES;
    }
    if (!reserve_memory(mb, size, heap)) {
        atomic_fetch_sub_explicit(&mb->counted_bytes, size, memory_order_relaxed);
        atomic_fetch_sub_explicit(&mb->counted, 1, memory_order_relaxed);
        return BOUND_MEMORY;
    }
    return ROOM;
}

int sn_mailbox_push(sn_mailbox *mb, sn_msg *m, int force, int *wake, size_t *warn)
{
    *wake = 0;
    *warn = 0;
    if (force) {
        atomic_fetch_add_explicit(&mb->bytes, m->size, memory_order_relaxed);
        m->flags |= SN_MSG_F_FORCED;
    } else {
        size_t heap;
        bound b = reserve(mb, m->size, &heap);
        if (b != ROOM) {
            pthread_mutex_lock(&mb->lock);
            mb->full = b;
            mb->full_size = m->size;
            mb->full_heap = heap;
            mb->refused++;
            pthread_mutex_unlock(&mb->lock);
            return SN_EFULL;
        }
        m->flags &= ~(unsigned)SN_MSG_F_FORCED;
    }
    /* counted before it can be taken, so that the consumer never counts below zero */
    size_t len = atomic_fetch_add_explicit(&mb->len, 1, memory_order_relaxed) + 1;
    sn_msg *top = atomic_load_explicit(&mb->inbox, memory_order_relaxed);
    do
        m->next = top; /* ABA is harmless: a push depends on the top's address only */
    while (!atomic_compare_exchange_weak(&mb->inbox, &top, m)); /* seq_cst: see yield */
    size_t peak = atomic_load_explicit(&mb->peak, memory_order_relaxed);
    while (len > peak && !atomic_compare_exchange_weak_explicit(&mb->peak, &peak, len,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed))
        ;
    size_t over = atomic_load_explicit(&mb->overload, memory_order_relaxed);
    if (len >= over && atomic_compare_exchange_strong_explicit(
                           &mb->overload, &over, over * 2, memory_order_relaxed,
                           memory_order_relaxed))
        *warn = len; /* one pusher tells each threshold */
    /* Only idle -> runnable wakes anyone. A plain read first: while the actor runs (the
     * common case in a flood) a push writes nothing more to a line the consumer uses. A
     * read of 1 is safe: the yield that clears it comes later in the seq_cst order than
     * this push's insert, so it sees the message and keeps the actor scheduled. */
    if (!atomic_load(&mb->scheduled) && !atomic_exchange(&mb->scheduled, 1))
        *wake = 1;
    return SN_OK;
}

int sn_mailbox_full(sn_mailbox *mb, char *why, size_t len)
{
    pthread_mutex_lock(&mb->lock);
    double now = sn_clock_mono();
    int tell = mb->refused && now - mb->told_at >= FULL_TELL_EVERY_S;
    if (tell) {
        int at = snprintf(why, len, "%zu refused (told every %d s at most); the last: ",
                          mb->refused, FULL_TELL_EVERY_S);
        mb->told_at = now;
        mb->refused = 0;
        if (at < 0 || (size_t)at >= len)
            at = 0;
        why += at;
        len -= (size_t)at;
        switch (mb->full) {
        case BOUND_COUNT:
            snprintf(why, len, "%zu messages queued (mailbox=%zu)", atomic_load(&mb->counted),
                     mb->cap);
            break;
        case BOUND_BYTES:
            snprintf(why, len, "%zu bytes queued, a message of %zu bytes refused "
                     "(mailbox_bytes=%zu)", atomic_load(&mb->counted_bytes), mb->full_size,
                     mb->cap_bytes);
            break;
        default:
            snprintf(why, len, "%zu bytes queued + %zu bytes of Lua heap, a message of %zu "
                     "bytes refused (memory=%zu)", atomic_load(&mb->bytes), mb->full_heap,
                     mb->full_size, mb->memory_cap);
            break;
        }
    }
    pthread_mutex_unlock(&mb->lock);
    return tell;
}

sn_msg *sn_mailbox_pop(sn_mailbox *mb)
{
    if (!mb->head) { /* take everything pushed so far, at once, and put it in order */
        sn_msg *m = atomic_exchange_explicit(&mb->inbox, NULL, memory_order_acquire), *fifo = NULL;
        while (m) {
            sn_msg *next = m->next;
            m->next = fifo;
            fifo = m;
            m = next;
        }
        mb->head = fifo;
    }
    sn_msg *m = mb->head;
    if (!m)
        return NULL;
    mb->head = m->next;
    m->next = NULL;
    size_t len = atomic_fetch_sub_explicit(&mb->len, 1, memory_order_relaxed) - 1;
    atomic_fetch_sub_explicit(&mb->bytes, m->size, memory_order_relaxed);
    if (!(m->flags & SN_MSG_F_FORCED)) {
        atomic_fetch_sub_explicit(&mb->counted_bytes, m->size, memory_order_relaxed);
        atomic_fetch_sub_explicit(&mb->counted, 1, memory_order_relaxed);
    }
    m->flags &= ~(unsigned)SN_MSG_F_FORCED;
    size_t over = atomic_load_explicit(&mb->overload, memory_order_relaxed);
    if (len < over / 4 && over > OVERLOAD_FIRST) /* drained: warn again if it grows back */
        atomic_compare_exchange_strong_explicit(&mb->overload, &over, over / 2,
                                                memory_order_relaxed, memory_order_relaxed);
    return m;
}

int sn_mailbox_yield(sn_mailbox *mb)
{
    if (mb->head)
        return 1;
    /* Idle, then look again: a push either sees the flag clear (and schedules the actor)
     * or is seen here (both sides seq_cst, Dekker's pattern). */
    atomic_store(&mb->scheduled, 0);
    if (!atomic_load(&mb->inbox))
        return 0;
    return !atomic_exchange(&mb->scheduled, 1); /* else a pusher scheduled it already */
}

size_t sn_mailbox_length(sn_mailbox *mb, size_t *peak)
{
    if (peak)
        *peak = atomic_load_explicit(&mb->peak, memory_order_relaxed);
    return atomic_load_explicit(&mb->len, memory_order_relaxed);
}

size_t sn_mailbox_bytes(sn_mailbox *mb)
{
    return atomic_load_explicit(&mb->bytes, memory_order_relaxed); /* no lock: hot path */
}
