/* sn_mailbox: a mutex-protected singly linked FIFO, as Skynet's message queue: the
 * `scheduled` flag makes sure an actor is in the run queue at most once. */
#include "sn_mailbox.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdlib.h>

enum { OVERLOAD_FIRST = 1024 };

struct sn_mailbox {
    pthread_mutex_t lock;
    sn_msg *head, *tail;
    size_t len, cap;
    size_t peak;     /* the longest it has been */
    size_t overload; /* next length that triggers a warning */
    int scheduled;   /* in the run queue or running on a worker */
};

sn_mailbox *sn_mailbox_new(size_t cap)
{
    sn_mailbox *mb = calloc(1, sizeof *mb);
    if (!mb)
        return NULL;
    pthread_mutex_init(&mb->lock, NULL);
    mb->cap = cap;
    mb->overload = OVERLOAD_FIRST;
    return mb;
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

int sn_mailbox_push(sn_mailbox *mb, sn_msg *m, int force, int *wake, size_t *warn)
{
    *wake = 0;
    *warn = 0;
    pthread_mutex_lock(&mb->lock);
    if (!force && mb->len >= mb->cap) {
        pthread_mutex_unlock(&mb->lock);
        return SN_EFULL;
    }
    m->next = NULL;
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    mb->len++;
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

sn_msg *sn_mailbox_pop(sn_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    sn_msg *m = mb->head;
    if (m) {
        mb->head = m->next;
        if (!mb->head)
            mb->tail = NULL;
        mb->len--;
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
