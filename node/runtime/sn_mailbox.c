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
    /* Queued messages and their bytes, apart for those pushed without force (what cap and
     * cap_bytes bound) and with force (bound by nothing), so that an ordinary message
     * costs two counter updates each way: length = counted + forced, bytes likewise. */
    _Atomic size_t counted, counted_bytes;
    _Atomic size_t forced, forced_bytes;
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
    atomic_init(&mb->counted, 0);
    atomic_init(&mb->counted_bytes, 0);
    atomic_init(&mb->forced, 0);
    atomic_init(&mb->forced_bytes, 0);
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

static size_t relaxed(_Atomic size_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* Adds one to *counter unless it is at limit: the new count, or 0. */
static size_t reserve_one(_Atomic size_t *counter, size_t limit)
{
    size_t c = relaxed(counter);
    do {
        if (c >= limit)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(counter, &c, c + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return c + 1;
}

/* Adds size to *counter unless that takes it past limit: 0 then, with the count seen. */
static int reserve_bytes(_Atomic size_t *counter, size_t size, size_t limit, size_t *seen)
{
    size_t c = relaxed(counter);
    do {
        *seen = c;
        if (size > limit || c > limit - size)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(counter, &c, c + size, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

/* Reserves a non-forced message's place in every bound, or in none: the bound that refused.
 * The memory cap bounds heap + all queued bytes: the counted bytes may take what the heap
 * and the forced bytes leave. A push that is refused may for a moment have held a place a
 * concurrent push then found taken: that one is refused too (no bound is ever passed). */
static bound reserve(sn_mailbox *mb, size_t size, size_t *len, size_t *heap)
{
    *heap = mb->heap ? relaxed(mb->heap) : 0;
    size_t n = reserve_one(&mb->counted, mb->cap);
    if (!n)
        return BOUND_COUNT;
    size_t limit = mb->cap_bytes;
    if (mb->memory_cap) {
        size_t room = *heap < mb->memory_cap ? mb->memory_cap - *heap : 0;
        size_t forced = relaxed(&mb->forced_bytes);
        room = room > forced ? room - forced : 0;
        limit = room < limit ? room : limit;
    }
    size_t seen;
    if (!reserve_bytes(&mb->counted_bytes, size, limit, &seen)) {
        atomic_fetch_sub_explicit(&mb->counted, 1, memory_order_relaxed);
        return size > mb->cap_bytes || seen > mb->cap_bytes - size ? BOUND_BYTES : BOUND_MEMORY;
    }
    *len = n + relaxed(&mb->forced);
    return ROOM;
}

int sn_mailbox_push(sn_mailbox *mb, sn_msg *m, int force, int *wake, size_t *warn)
{
    *wake = 0;
    *warn = 0;
    size_t len; /* counted before it can be taken: the consumer never counts below zero */
    if (force) {
        atomic_fetch_add_explicit(&mb->forced_bytes, m->size, memory_order_relaxed);
        len = atomic_fetch_add_explicit(&mb->forced, 1, memory_order_relaxed) + 1 +
              relaxed(&mb->counted);
        m->flags |= SN_MSG_F_FORCED;
    } else {
        size_t heap;
        bound b = reserve(mb, m->size, &len, &heap);
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
    sn_msg *top = atomic_load_explicit(&mb->inbox, memory_order_relaxed);
    do
        m->next = top; /* ABA is harmless: a push depends on the top's address only */
    while (!atomic_compare_exchange_weak(&mb->inbox, &top, m)); /* seq_cst: see yield */
    size_t peak = relaxed(&mb->peak);
    while (len > peak && !atomic_compare_exchange_weak_explicit(&mb->peak, &peak, len,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed))
        ;
    size_t over = relaxed(&mb->overload);
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
            snprintf(why, len, "%zu messages queued (mailbox=%zu)", relaxed(&mb->counted),
                     mb->cap);
            break;
        case BOUND_BYTES:
            snprintf(why, len, "%zu bytes queued, a message of %zu bytes refused "
                     "(mailbox_bytes=%zu)", relaxed(&mb->counted_bytes), mb->full_size,
                     mb->cap_bytes);
            break;
        default:
            snprintf(why, len, "%zu bytes queued + %zu bytes of Lua heap, a message of %zu "
                     "bytes refused (memory=%zu)", sn_mailbox_bytes(mb), mb->full_heap,
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
    if (m->flags & SN_MSG_F_FORCED) {
        atomic_fetch_sub_explicit(&mb->forced_bytes, m->size, memory_order_relaxed);
        atomic_fetch_sub_explicit(&mb->forced, 1, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(&mb->counted_bytes, m->size, memory_order_relaxed);
        atomic_fetch_sub_explicit(&mb->counted, 1, memory_order_relaxed);
    }
    m->flags &= ~(unsigned)SN_MSG_F_FORCED;
    size_t over = relaxed(&mb->overload);
    /* drained: warn again if it grows back */
    if (over > OVERLOAD_FIRST && sn_mailbox_length(mb, NULL) < over / 4)
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
        *peak = relaxed(&mb->peak);
    return relaxed(&mb->counted) + relaxed(&mb->forced);
}

size_t sn_mailbox_bytes(sn_mailbox *mb)
{
    return relaxed(&mb->counted_bytes) + relaxed(&mb->forced_bytes); /* no lock: hot path */
}
