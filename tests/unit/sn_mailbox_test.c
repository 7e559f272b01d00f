/* sn_mailbox: FIFO, the cap, the wake flag and overload warnings. */
#include "sn_error.h"
#include "sn_mailbox.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static sn_msg *msg(int i)
{
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, "name", NULL, "s", &i, sizeof i);
    cr_assert_not_null(m);
    return m;
}

static int value(sn_msg *m)
{
    int v;
    memcpy(&v, m->data, sizeof v);
    return v;
}

Test(sn_mailbox, fifo_wake_and_yield)
{
    sn_mailbox *mb = sn_mailbox_new(10, (size_t)1 << 40);
    int wake;
    size_t warn;
    cr_assert_eq(sn_mailbox_push(mb, msg(1), 0, &wake, &warn), SN_OK);
    cr_assert_eq(wake, 1, "an idle mailbox asks to be scheduled");
    cr_assert_eq(sn_mailbox_push(mb, msg(2), 0, &wake, &warn), SN_OK);
    cr_assert_eq(wake, 0, "already scheduled");
    sn_msg *m = sn_mailbox_pop(mb);
    cr_assert_eq(value(m), 1);
    sn_msg_destroy(&m);
    cr_assert_eq(sn_mailbox_yield(mb), 1, "one left: stay scheduled");
    m = sn_mailbox_pop(mb);
    cr_assert_eq(value(m), 2);
    sn_msg_destroy(&m);
    cr_assert_null(sn_mailbox_pop(mb));
    cr_assert_eq(sn_mailbox_yield(mb), 0);
    cr_assert_eq(sn_mailbox_push(mb, msg(3), 0, &wake, &warn), SN_OK);
    cr_assert_eq(wake, 1, "idle again after yield");
    sn_mailbox_destroy(&mb); /* frees the message still queued */
    cr_assert_null(mb);
}

Test(sn_mailbox, cap_and_force)
{
    sn_mailbox *mb = sn_mailbox_new(2, (size_t)1 << 40);
    int wake;
    size_t warn;
    cr_assert_eq(sn_mailbox_push(mb, msg(1), 0, &wake, &warn), SN_OK);
    cr_assert_eq(sn_mailbox_push(mb, msg(2), 0, &wake, &warn), SN_OK);
    sn_msg *m = msg(3);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_EFULL);
    cr_assert_eq(sn_mailbox_length(mb, NULL), 2);
    cr_assert_eq(sn_mailbox_push(mb, m, 1, &wake, &warn), SN_OK, "force passes the cap");
    cr_assert_eq(sn_mailbox_length(mb, NULL), 3);
    sn_mailbox_destroy(&mb);
}

Test(sn_mailbox, overload_warnings_double)
{
    sn_mailbox *mb = sn_mailbox_new(100000, (size_t)1 << 40);
    int wake;
    size_t warn, warned[8];
    int nw = 0;
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(sn_mailbox_push(mb, msg(i), 0, &wake, &warn), SN_OK);
        if (warn)
            warned[nw++] = warn;
    }
    cr_assert_eq(nw, 3);
    size_t peak;
    cr_assert_eq(sn_mailbox_length(mb, &peak), 5000);
    cr_assert_eq(peak, 5000);
    cr_assert_eq(warned[0], 1024);
    cr_assert_eq(warned[1], 2048);
    cr_assert_eq(warned[2], 4096);
    sn_mailbox_destroy(&mb);
}

typedef struct {
    sn_mailbox *mb;
    int base;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    int wake;
    size_t warn;
    for (int i = 0; i < 10000; i++)
        sn_mailbox_push(p->mb, msg(p->base + i), 0, &wake, &warn);
    return NULL;
}

Test(sn_mailbox, per_sender_fifo_under_concurrency)
{
    sn_mailbox *mb = sn_mailbox_new(1000000, (size_t)1 << 40);
    producer p[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (producer){mb, i * 100000};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    int last[4] = {-1, -1, -1, -1}, n = 0;
    sn_msg *m;
    while ((m = sn_mailbox_pop(mb))) {
        int v = value(m), s = v / 100000;
        cr_assert(v % 100000 == last[s] + 1, "sender %d: got %d after %d", s, v % 100000, last[s]);
        last[s] = v % 100000;
        sn_msg_destroy(&m);
        n++;
    }
    cr_assert_eq(n, 40000);
    sn_mailbox_destroy(&mb);
}

/* issue 12: a new actor with mailbox=100 accepted 99 messages: its forced start message
 * took a slot. A forced message is queued but takes no one's place. */
Test(sn_mailbox, forced_messages_take_no_slot)
{
    sn_mailbox *mb = sn_mailbox_new(100, (size_t)1 << 40);
    int wake;
    size_t warn;
    cr_assert_eq(sn_mailbox_push(mb, msg(0), 1, &wake, &warn), SN_OK); /* the start */
    for (int i = 1; i <= 100; i++)
        cr_assert_eq(sn_mailbox_push(mb, msg(i), 0, &wake, &warn), SN_OK, "message %d", i);
    sn_msg *m = msg(101);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_EFULL, "exactly at the bound");
    sn_msg_destroy(&m);
    cr_assert_eq(sn_mailbox_length(mb, NULL), 101);
    m = sn_mailbox_pop(mb); /* the start leaves: still 100 counted, still full */
    sn_msg_destroy(&m);
    m = msg(102);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_EFULL);
    sn_msg *first = sn_mailbox_pop(mb); /* one counted message leaves: room for one */
    cr_assert_eq(value(first), 1);
    sn_msg_destroy(&first);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_OK);
    sn_mailbox_destroy(&mb);
}

static sn_msg *big(size_t len)
{
    char *data = calloc(1, len);
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, "x", NULL, NULL, data, len);
    free(data);
    cr_assert_not_null(m);
    return m;
}

/* issue 12: mailboxes were bounded by count only (1,000 x 2 MiB frames: 1.88 GB). */
Test(sn_mailbox, bounded_in_bytes)
{
    sn_msg *probe = big(1 << 20);
    size_t one = probe->size;
    sn_msg_destroy(&probe);
    sn_mailbox *mb = sn_mailbox_new(1000, 3 * one);
    int wake;
    size_t warn;
    char why[200];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sn_mailbox_push(mb, big(1 << 20), 0, &wake, &warn), SN_OK);
    cr_assert_eq(sn_mailbox_bytes(mb), 3 * one);
    sn_msg *m = big(1 << 20);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_EFULL);
    cr_assert_eq(sn_mailbox_full(mb, why, sizeof why), 1);
    cr_assert(strstr(why, "mailbox_bytes=") && strstr(why, "1 refused"), "%s", why);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_EFULL);
    cr_assert_eq(sn_mailbox_full(mb, why, sizeof why), 0, "at most one report in 10 s");
    sn_msg *small = msg(1);
    cr_assert_eq(sn_mailbox_push(mb, small, 0, &wake, &warn), SN_EFULL, "no byte left");
    sn_msg_destroy(&small);
    cr_assert_eq(sn_mailbox_push(mb, m, 1, &wake, &warn), SN_OK, "force passes the bound");
    for (int i = 0; i < 3; i++) {
        sn_msg *p = sn_mailbox_pop(mb);
        sn_msg_destroy(&p);
    }
    cr_assert_eq(sn_mailbox_bytes(mb), one);
    cr_assert_eq(sn_mailbox_push(mb, big(1 << 20), 0, &wake, &warn), SN_OK,
                 "the forced one counts toward memory, not toward mailbox_bytes");
    sn_mailbox_destroy(&mb);
}

/* issue 12: queued messages escaped the memory cap (150 x 10 MiB to itself: 1.56 GB with a
 * 10 MiB heap): heap + queued bytes stay within the cap. */
Test(sn_mailbox, queued_bytes_count_toward_the_memory_cap)
{
    _Atomic size_t heap = 6u << 20;
    sn_mailbox *mb = sn_mailbox_new(1000, (size_t)1 << 40);
    sn_mailbox_govern(mb, &heap, 10u << 20);
    int wake;
    size_t warn;
    char why[200];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sn_mailbox_push(mb, big(1 << 20), 0, &wake, &warn), SN_OK);
    sn_msg *m = big(1 << 20);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_EFULL, "6 MiB + 4 x (1 MiB+)");
    cr_assert_eq(sn_mailbox_full(mb, why, sizeof why), 1);
    cr_assert(strstr(why, "Lua heap") && strstr(why, "memory="), "%s", why);
    heap = 1u << 20; /* the actor freed memory */
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_OK);
    heap = 20u << 20; /* above the cap: nothing more, however small */
    m = msg(1);
    cr_assert_eq(sn_mailbox_push(mb, m, 0, &wake, &warn), SN_EFULL);
    sn_msg_destroy(&m);
    sn_mailbox_destroy(&mb);
}

/* issue 17: the mailbox has no lock any more; its bounds are reserved by compare-and-swap.
 * Eight senders race for a mailbox of 1000 with no consumer: exactly 1000 get in, the
 * rest are refused and counted, and the length never passes the bound. */
typedef struct {
    sn_mailbox *mb;
    atomic_int *ok, *full, *wakes;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 500; i++) {
        int wake;
        size_t warn;
        sn_msg *m = msg(i);
        if (sn_mailbox_push(r->mb, m, 0, &wake, &warn) == SN_OK) {
            atomic_fetch_add(r->ok, 1);
            atomic_fetch_add(r->wakes, wake);
        } else {
            atomic_fetch_add(r->full, 1);
            sn_msg_destroy(&m);
        }
    }
    return NULL;
}

static void race_for(sn_mailbox *mb, int *ok, int *full, int *wakes)
{
    atomic_int a = 0, b = 0, c = 0;
    racer r = {mb, &a, &b, &c};
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, race, &r);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    *ok = atomic_load(&a);
    *full = atomic_load(&b);
    *wakes = atomic_load(&c);
}

Test(sn_mailbox, bounds_hold_exactly_under_concurrent_senders)
{
    sn_mailbox *mb = sn_mailbox_new(1000, (size_t)1 << 40);
    int ok, full, wakes;
    race_for(mb, &ok, &full, &wakes);
    cr_assert_eq(ok, 1000, "the count bound: %d queued", ok);
    cr_assert_eq(full, 3000);
    cr_assert_eq(wakes, 1, "one wake-up for idle -> runnable, however many senders");
    size_t peak;
    cr_assert_eq(sn_mailbox_length(mb, &peak), 1000);
    cr_assert_eq(peak, 1000);
    char why[200];
    cr_assert_eq(sn_mailbox_full(mb, why, sizeof why), 1);
    cr_assert(strstr(why, "3000 refused") && strstr(why, "mailbox=1000"), "%s", why);
    sn_mailbox_destroy(&mb);

    sn_msg *one = msg(0); /* the byte bound: room for exactly 700 of them */
    size_t size = one->size;
    sn_msg_destroy(&one);
    mb = sn_mailbox_new(1000000, 700 * size);
    race_for(mb, &ok, &full, &wakes);
    cr_assert_eq(ok, 700, "the byte bound: %d queued", ok);
    cr_assert_eq(sn_mailbox_bytes(mb), 700 * size);
    sn_mailbox_destroy(&mb);
}

/* A consumer that runs only when a push says wake, and yields after each few messages, as
 * a worker does: no wake-up is lost between a push and the yield that sets the mailbox
 * idle. One sender (the race is between it and the consumer): whenever the consumer is
 * idle with no wake-up pending, it has taken everything sent. */
typedef struct {
    sn_mailbox *mb;
    atomic_int runnable; /* wake-ups handed to the consumer, not yet taken */
    atomic_int sent;     /* pushes complete, wake-up included */
    atomic_int seq;      /* odd while a push is under way */
    atomic_int twice;    /* wake-ups given while one was still pending */
} wake_race;

enum { WAKE_RACE_N = 200000 };

static void *wake_producer(void *arg)
{
    wake_race *w = arg;
    for (int i = 0; i < WAKE_RACE_N; i++) {
        int wake;
        size_t warn;
        sn_msg *m = msg(i);
        atomic_fetch_add(&w->seq, 1);
        cr_assert_eq(sn_mailbox_push(w->mb, m, 0, &wake, &warn), SN_OK);
        if (wake && atomic_fetch_add(&w->runnable, 1) != 0)
            atomic_fetch_add(&w->twice, 1);
        atomic_fetch_add(&w->sent, 1);
        atomic_fetch_add(&w->seq, 1);
        if (i % 8 == 0)
            sched_yield(); /* let the consumer catch up and go idle often */
    }
    return NULL;
}

Test(sn_mailbox, no_wake_up_lost_between_push_and_yield)
{
    /* The interleaving itself, on one thread: the turn found the mailbox empty, a message
     * arrives (no wake-up: the actor is still scheduled), then the turn yields. */
    sn_mailbox *mb = sn_mailbox_new(10, (size_t)1 << 40);
    int wake;
    size_t warn;
    cr_assert_eq(sn_mailbox_push(mb, msg(1), 0, &wake, &warn), SN_OK);
    cr_assert_eq(wake, 1);
    sn_msg *m = sn_mailbox_pop(mb);
    sn_msg_destroy(&m);
    cr_assert_null(sn_mailbox_pop(mb));
    cr_assert_eq(sn_mailbox_push(mb, msg(2), 0, &wake, &warn), SN_OK);
    cr_assert_eq(wake, 0, "still scheduled: no second wake-up");
    cr_assert_eq(sn_mailbox_yield(mb), 1, "the late message keeps the actor scheduled");
    m = sn_mailbox_pop(mb);
    cr_assert_eq(value(m), 2);
    sn_msg_destroy(&m);
    cr_assert_eq(sn_mailbox_yield(mb), 0);
    sn_mailbox_destroy(&mb);

    static wake_race w; /* static: a failed assertion leaves the sender running */
    w.mb = sn_mailbox_new(WAKE_RACE_N, (size_t)1 << 40);
    atomic_init(&w.runnable, 0);
    atomic_init(&w.sent, 0);
    atomic_init(&w.seq, 0);
    atomic_init(&w.twice, 0);
    pthread_t t;
    pthread_create(&t, NULL, wake_producer, &w);
    int taken = 0, runs = 0;
    while (taken < WAKE_RACE_N) {
        int before = atomic_load(&w.seq);
        int sent = atomic_load(&w.sent), pending = atomic_load(&w.runnable);
        if (pending == 0) {
            /* Checked only between two pushes (a push under way may carry the wake-up of
             * a message counted as sent already). Then every message sent was taken. */
            if (before % 2 == 0 && atomic_load(&w.seq) == before)
                cr_assert_eq(taken, sent, "idle, no wake-up pending, no push under way: "
                             "%d of %d sent taken", taken, sent);
            sched_yield();
            continue;
        }
        atomic_fetch_sub(&w.runnable, 1);
        runs++;
        do { /* one turn: a few messages, then yield */
            for (int i = 0; i < 7; i++) {
                sn_msg *got = sn_mailbox_pop(w.mb);
                if (!got)
                    break;
                cr_assert_eq(value(got), taken, "in order");
                sn_msg_destroy(&got);
                taken++;
            }
        } while (sn_mailbox_yield(w.mb));
    }
    pthread_join(t, NULL);
    cr_assert_null(sn_mailbox_pop(w.mb));
    cr_assert_eq(sn_mailbox_yield(w.mb), 0);
    cr_assert_gt(runs, 1);
    cr_assert_eq(atomic_load(&w.twice), 0, "scheduled twice at once");
    sn_mailbox_destroy(&w.mb);
}
