/* sn_map: both key kinds, replacement, removal and tombstones, iteration, and
 * out-of-memory injected through the allocation hook at every allocation. */
#include "sn_map.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An allocator that fails the n-th allocation from now (fail_at 0: never), and counts
 * live blocks so leaks show. */
typedef struct budget {
    long allocs, fail_at;
    long live;
} budget;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    budget *b = ud;
    if (nsize == 0) {
        if (ptr)
            b->live--;
        free(ptr);
        return NULL;
    }
    if (b->fail_at && ++b->allocs >= b->fail_at)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p && !ptr)
        b->live++;
    return p;
}

static void *val(uintptr_t i)
{
    return (void *)(i * 8 + 8);
}

Test(sn_map, fnv1a_known_values)
{
    cr_assert_eq(sn_map_hash("", 0), 0xcbf29ce484222325ull);
    cr_assert_eq(sn_map_hash("a", 1), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(sn_map_hash("foobar", 6), 0x85944171f73967e8ull);
}

Test(sn_map, hash_more_continues_the_same_hash)
{
    cr_assert_eq(sn_map_hash_more(sn_map_hash("foo", 3), "bar", 3), 0x85944171f73967e8ull);
    cr_assert_eq(sn_map_hash_more(sn_map_hash("", 0), "a", 1), sn_map_hash("a", 1));
    cr_assert_eq(sn_map_hash_more(sn_map_hash("a", 1), "", 0), sn_map_hash("a", 1));
}

/* The placement hashes' start is the one every build used (tests/cluster/test_stages.py
 * computes the homes with it): moving it would move every built-in stage's home. */
Test(sn_map, placement_seed_keeps_its_value)
{
    const char key[] = "builtin:index\xffnode-a";
    cr_assert_eq(sn_map_hash_more(SN_MAP_HASH_PLACEMENT, key, sizeof key - 1), 0x51c91cf1ae28bdffull);
}

Test(sn_map, rendezvous_is_the_placement_hash_of_key_ff_node)
{
    /* built-in stages' and locks' homes: every build must rank nodes the same */
    uint64_t h = 0x51c91cf1ae28bdffull; /* placement_seed_keeps_its_value's key */
    cr_assert_eq(sn_map_rendezvous("builtin:index", "node-a"), h ^ (h >> 29));
}

Test(sn_map, u64_put_get_del_many)
{
    sn_map *m = sn_map_new(SN_MAP_U64);
    cr_assert_not_null(m);
    cr_assert_null(sn_map_get(m, 1), "an empty map finds nothing");
    for (uint64_t k = 0; k < 10000; k++)
        cr_assert_eq(sn_map_put(m, k * 7919, val(k)), SN_OK);
    cr_assert_eq(sn_map_count(m), 10000);
    for (uint64_t k = 0; k < 10000; k++)
        cr_assert_eq(sn_map_get(m, k * 7919), val(k));
    cr_assert_null(sn_map_get(m, 3));
    cr_assert_eq(sn_map_put(m, 0, val(42)), SN_OK, "key 0 is a key like any other");
    cr_assert_eq(sn_map_get(m, 0), val(42), "put replaces");
    cr_assert_eq(sn_map_count(m), 10000);
    for (uint64_t k = 0; k < 10000; k += 2)
        cr_assert_eq(sn_map_del(m, k * 7919), k ? val(k) : val(42));
    cr_assert_null(sn_map_del(m, 2 * 7919), "already gone");
    cr_assert_eq(sn_map_count(m), 5000);
    for (uint64_t k = 1; k < 10000; k += 2)
        cr_assert_eq(sn_map_get(m, k * 7919), val(k), "survives its neighbours' removal");
    sn_map_destroy(&m);
    cr_assert_null(m);
    sn_map_destroy(&m);
}

Test(sn_map, str_keys_are_copied)
{
    budget b = {0};
    sn_map *m = sn_map_new_alloc(SN_MAP_STR, counting_alloc, &b);
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "stage-%d", i);
        cr_assert_eq(sn_map_sput(m, key, val((uintptr_t)i)), SN_OK);
    }
    memset(key, 'x', sizeof key - 1); /* the map kept its own copies */
    cr_assert_eq(sn_map_sget(m, "stage-1234"), val(1234));
    cr_assert_null(sn_map_sget(m, "stage-2000"));
    cr_assert_null(sn_map_sget(m, "stage-12345"));
    cr_assert_null(sn_map_sget(m, ""));
    cr_assert_eq(sn_map_sput(m, "", val(7)), SN_OK, "the empty string is a key");
    cr_assert_eq(sn_map_sget(m, ""), val(7));
    cr_assert_eq(sn_map_sput(m, "stage-5", val(99)), SN_OK);
    cr_assert_eq(sn_map_sget(m, "stage-5"), val(99));
    cr_assert_eq(sn_map_count(m), 2001);
    cr_assert_eq(sn_map_sdel(m, "stage-5"), val(99));
    cr_assert_null(sn_map_sget(m, "stage-5"));
    cr_assert_eq(sn_map_count(m), 2000);
    sn_map_destroy(&m);
    cr_assert_eq(b.live, 0, "every key copy and table freed");
}

Test(sn_map, churn_keeps_the_table_small)
{
    /* put/del cycles leave tombstones; rehashing at the same size must clear them, not
     * grow the table forever or loop on a table full of tombstones */
    budget b = {0};
    sn_map *m = sn_map_new_alloc(SN_MAP_U64, counting_alloc, &b);
    for (uint64_t k = 1; k <= 100; k++)
        sn_map_put(m, k, val(k));
    for (uint64_t k = 101; k <= 200000; k++) {
        cr_assert_eq(sn_map_put(m, k, val(k)), SN_OK);
        cr_assert_eq(sn_map_del(m, k - 100), val(k - 100));
    }
    cr_assert_eq(sn_map_count(m), 100);
    for (uint64_t k = 199901; k <= 200000; k++)
        cr_assert_eq(sn_map_get(m, k), val(k));
    cr_assert_lt(b.allocs, 2000, "%ld allocations: the table kept growing", b.allocs);
    sn_map_destroy(&m);
    cr_assert_eq(b.live, 0);
}

Test(sn_map, iteration_sees_each_entry_once_and_may_remove_it)
{
    sn_map *m = sn_map_new(SN_MAP_STR);
    char key[16];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "k%d", i);
        sn_map_sput(m, key, val((uintptr_t)i));
    }
    static char seen[500];
    size_t pos = 0;
    sn_map_item it;
    int n = 0;
    while (sn_map_next(m, &pos, &it)) {
        int i = atoi(it.key_str + 1);
        cr_assert_eq(it.value, val((uintptr_t)i));
        cr_assert_eq(seen[i], 0);
        seen[i] = 1;
        n++;
        if (i % 3 == 0) {
            snprintf(key, sizeof key, "%s", it.key_str);
            cr_assert_eq(sn_map_sdel(m, key), val((uintptr_t)i));
        }
    }
    cr_assert_eq(n, 500);
    cr_assert_eq(sn_map_count(m), 500 - 167);
    cr_assert_null(sn_map_sget(m, "k3"));
    cr_assert_not_null(sn_map_sget(m, "k4"));
    sn_map_clear(m);
    cr_assert_eq(sn_map_count(m), 0);
    pos = 0;
    cr_assert_eq(sn_map_next(m, &pos, &it), 0);
    cr_assert_eq(sn_map_sput(m, "again", val(1)), SN_OK);
    cr_assert_eq(sn_map_sget(m, "again"), val(1));
    sn_map_destroy(&m);
}

Test(sn_map, out_of_memory_at_every_allocation_leaves_the_map_whole)
{
    for (int kind = 0; kind < 2; kind++) {
        for (long fail = 1; fail < 60; fail++) {
            budget b = {.fail_at = fail};
            sn_map *m = sn_map_new_alloc(kind, counting_alloc, &b);
            if (!m) {
                cr_assert_eq(fail, 1);
                continue;
            }
            long stored = 0;
            for (long i = 0; i < 200; i++) {
                char key[16];
                snprintf(key, sizeof key, "%ld", i);
                int rc = kind == SN_MAP_U64 ? sn_map_put(m, (uint64_t)i, val((uintptr_t)i))
                                            : sn_map_sput(m, key, val((uintptr_t)i));
                cr_assert(rc == SN_OK || rc == SN_ENOMEM);
                if (rc != SN_OK)
                    break;
                stored++;
            }
            cr_assert_eq(sn_map_count(m), (size_t)stored);
            for (long i = 0; i < 200; i++) {
                char key[16];
                snprintf(key, sizeof key, "%ld", i);
                void *v = kind == SN_MAP_U64 ? sn_map_get(m, (uint64_t)i) : sn_map_sget(m, key);
                cr_assert_eq(v, i < stored ? val((uintptr_t)i) : NULL,
                             "kind %d, failing allocation %ld, key %ld", kind, fail, i);
            }
            sn_map_destroy(&m);
            cr_assert_eq(b.live, 0, "kind %d, failing allocation %ld: a leak", kind, fail);
        }
    }
}
