/* sn_small: freed small blocks come back to the same thread, sizes are kept by class, the
 * cache is bounded, large blocks bypass it, and a thread's cache is freed when it ends (the
 * ASan build's leak check would report it otherwise). */
#include "sn_small.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

Test(sn_small, a_freed_block_is_taken_again_by_the_next_of_its_class)
{
    void *a = sn_small_alloc(40);
    cr_assert_not_null(a);
    memset(a, 7, 40);
    size_t before = sn_small_cached();
    sn_small_free(a, 40);
    cr_assert_eq(sn_small_cached(), before + 40, "its class's blocks are 40 bytes");
    void *b = sn_small_alloc(25); /* the same class (25..40) */
    cr_assert_eq(b, a);
    cr_assert_eq(sn_small_cached(), before);
    memset(b, 1, 40); /* the whole class size is usable */
    sn_small_free(b, 25);
}

Test(sn_small, realloc_keeps_the_block_within_its_class_and_the_bytes_across)
{
    unsigned char *p = sn_small_realloc(NULL, 0, 20);
    cr_assert_not_null(p);
    for (int i = 0; i < 20; i++)
        p[i] = (unsigned char)i;
    cr_assert_eq(sn_small_realloc(p, 20, 24), p, "20 and 24 bytes share a class");
    unsigned char *q = sn_small_realloc(p, 24, 200);
    cr_assert_not_null(q);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(q[i], i);
    unsigned char *r = sn_small_realloc(q, 200, 5000); /* out of the small sizes */
    cr_assert_not_null(r);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(r[i], i);
    r[4999] = 1;
    unsigned char *s = sn_small_realloc(r, 5000, 10000); /* large to large: realloc */
    cr_assert_not_null(s);
    unsigned char *t = sn_small_realloc(s, 10000, 8); /* and back to small */
    cr_assert_not_null(t);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(t[i], i);
    sn_small_free(t, 8);
}

Test(sn_small, large_blocks_are_not_kept)
{
    size_t before = sn_small_cached();
    void *p = sn_small_alloc(SN_SMALL_MAX + 1);
    cr_assert_not_null(p);
    sn_small_free(p, SN_SMALL_MAX + 1);
    cr_assert_eq(sn_small_cached(), before);
}

Test(sn_small, the_cache_stops_at_its_bound)
{
    enum { N = SN_SMALL_CACHE / 64 + 100 };
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(blocks[i] = sn_small_alloc(64));
    for (int i = 0; i < N; i++)
        sn_small_free(blocks[i], 64);
    cr_assert_leq(sn_small_cached(), (size_t)SN_SMALL_CACHE);
    cr_assert_geq(sn_small_cached(), (size_t)SN_SMALL_CACHE - SN_SMALL_MAX);
    for (int i = 0; i < N; i++) /* empties it again (and what it could not hold is new) */
        blocks[i] = sn_small_alloc(64);
    cr_assert_eq(sn_small_cached(), 0);
    for (int i = 0; i < N; i++)
        free(blocks[i]); /* plain malloc blocks: free() takes them too */
}

static void *fill_and_end(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        sn_small_free(sn_small_alloc((size_t)(i % 16 + 1) * 16), (size_t)(i % 16 + 1) * 16);
    return (void *)(uintptr_t)sn_small_cached();
}

Test(sn_small, each_thread_has_its_own_cache_freed_when_it_ends)
{
    sn_small_free(sn_small_alloc(8), 8); /* this thread's cache exists */
    size_t before = sn_small_cached(), caches = sn_small_caches();
    pthread_t t;
    void *held;
    cr_assert_eq(pthread_create(&t, NULL, fill_and_end, NULL), 0);
    cr_assert_eq(pthread_join(t, &held), 0);
    cr_assert_gt((uintptr_t)held, 0, "the thread kept blocks");
    cr_assert_eq(sn_small_cached(), before, "not in this thread's cache");
    cr_assert_eq(sn_small_caches(), caches, "the ended thread's cache was not freed");
}
