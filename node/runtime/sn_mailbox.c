/* sn_mailbox: a mutex-protected singly linked FIFO, as Skynet's message queue: the
 * `scheduled` flag makes sure an actor is in the run queue at most once. */
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
    pthread_mutex_t lock;
    sn_msg *head, *tail;
    size_t len, cap;
    size_t counted;       /* messages queued without force: what cap bounds */
    _Atomic size_t bytes; /* bytes of all queued messages; written under the lock, read
                             without it by sn_mailbox_bytes (once per message handled) */
    size_t counted_bytes; /* bytes of those queued without force: what cap_bytes bounds */
    size_t cap_bytes;
    _Atomic size_t *heap; /* the actor's VM bytes, or NULL */
    size_t memory_cap;    /* heap + bytes stay within it; 0: no bound */
    size_t peak;          /* the longest it has been */
    size_t overload;      /* next length that triggers a warning */
    int scheduled;        /* in the run queue or running on a worker */
    bound full;           /* the bound that refused the latest push */
    size_t refused;       /* pushes refused since sn_mailbox_full last told */
    double told_at;       /* when it last told (monotonic s) */
    size_t full_size, full_heap; /* the refused message's size, the heap then */
};

sn_mailbox *sn_mailbox_new(size_t cap, size_t cap_bytes)
{
    sn_mailbox *mb = calloc(1, sizeof *mb);
    if (!mb)
        return NULL;
    pthread_mutex_init(&mb->lock, NULL);
    atomic_init(&mb->bytes, 0);
    mb->cap = cap;
    mb->cap_bytes = cap_bytes;
    mb->overload = OVERLOAD_FIRST;
    mb->told_at = -1e9;
    return mb;
}

void sn_mailbox_govern(sn_mailbox *mb, _Atomic size_t *heap, size_t memory_cap)
{
    mb->heap = heap;
    mb->memory_cap = memory_cap;
}

void sn_mailbox_destroy(sn_mailbox **mbp)
{
    if (!mbp || !*mbp)
        return;
    sn_mailbox *mb = *mbp;
    while (mb->head) {
        sn_msg *m = mb->head;
        mb->head = m->next;
        sn_msg_destroy(&m);
    }
    pthread_mutex_destroy(&mb->lock);
    free(mb);
    *mbp = NULL;
}

/* Which bound a push of size bytes would pass; ROOM when none. Under the lock. */
static bound over(sn_mailbox *mb, size_t size, size_t *heap)
{
    *heap = mb->heap ? atomic_load_explicit(mb->heap, memory_order_relaxed) : 0;
    if (mb->counted >= mb->cap)
        return BOUND_COUNT;
    if (size > mb->cap_bytes || mb->counted_bytes > mb->cap_bytes - size)
        return BOUND_BYTES;
    if (mb->memory_cap && (*heap >= mb->memory_cap || size > mb->memory_cap - *heap ||
                           atomic_load_explicit(&mb->bytes, memory_order_relaxed) >
                               mb->memory_cap - *heap - size))
        return BOUND_MEMORY;
    return ROOM;
}

int sn_mailbox_push(sn_mailbox *mb, sn_msg *m, int force, int *wake, size_t *warn)
{
    *wake = 0;
    *warn = 0;
    pthread_mutex_lock(&mb->lock);
    size_t heap;
    bound b = force ? ROOM : over(mb, m->size, &heap);
    if (b != ROOM) {
        mb->full = b;
        mb->full_size = m->size;
        mb->full_heap = heap;
        mb->refused++;
        pthread_mutex_unlock(&mb->lock);
        return SN_EFULL;
    }
    m->next = NULL;
    if (force) {
        m->flags |= SN_MSG_F_FORCED;
    } else {
        m->flags &= ~(unsigned)SN_MSG_F_FORCED;
        mb->counted++;
        mb->counted_bytes += m->size;
    }
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    mb->len++;
    atomic_fetch_add_explicit(&mb->bytes, m->size, memory_order_relaxed);
    if (mb->len > mb->peak)
        mb->peak = mb->len;
    if (mb->len >= mb->overload) {
        *warn = mb->len;
        mb->overload *= 2;
    }
    if (!mb->scheduled) {
        mb->scheduled = 1;
        *wake = 1;
    }
    pthread_mutex_unlock(&mb->lock);
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
            snprintf(why, len, "%zu messages queued (mailbox=%zu)", mb->counted, mb->cap);
            break;
        case BOUND_BYTES:
            snprintf(why, len, "%zu bytes queued, a message of %zu bytes refused "
                     "(mailbox_bytes=%zu)", mb->counted_bytes, mb->full_size, mb->cap_bytes);
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
    pthread_mutex_lock(&mb->lock);
    sn_msg *m = mb->head;
    if (m) {
        mb->head = m->next;
        if (!mb->head)
            mb->tail = NULL;
        mb->len--;
        atomic_fetch_sub_explicit(&mb->bytes, m->size, memory_order_relaxed);
        if (!(m->flags & SN_MSG_F_FORCED)) {
            mb->counted--;
            mb->counted_bytes -= m->size;
        }
        m->flags &= ~(unsigned)SN_MSG_F_FORCED;
        if (mb->len < mb->overload / 4 && mb->overload > OVERLOAD_FIRST)
            mb->overload /= 2; /* drained: warn again if it grows back */
        m->next = NULL;
    }
    pthread_mutex_unlock(&mb->lock);
    return m;
}

int sn_mailbox_yield(sn_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    int more = mb->head != NULL;
    if (!more)
        mb->scheduled = 0;
    pthread_mutex_unlock(&mb->lock);
    return more;
}

size_t sn_mailbox_length(sn_mailbox *mb, size_t *peak)
{
    pthread_mutex_lock(&mb->lock);
    size_t n = mb->len;
    if (peak)
        *peak = mb->peak;
    pthread_mutex_unlock(&mb->lock);
    return n;
}

size_t sn_mailbox_bytes(sn_mailbox *mb)
{
    return atomic_load_explicit(&mb->bytes, memory_order_relaxed); /* no lock: hot path */
}
