/* sn_fcache: bytecode by hash; hits and misses; the oldest evicted first, by count and by
 * bytes; a hash already held keeps its first code. */
#include "sn_fcache.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void hash_of(unsigned n, unsigned char h[16])
{
    memset(h, 0xab, 16);
    memcpy(h + 8, &n, sizeof n); /* the first 8 bytes agree: the whole hash is the key */
}

Test(sn_fcache, store_lookup_counts)
{
    sn_fcache *f = sn_fcache_new();
    unsigned char h[16];
    hash_of(1, h);
    size_t len = 0;
    cr_assert_null(sn_fcache_lookup(f, h, &len));
    sn_fcache_store(f, h, "code-1", 6);
    sn_fcache_store(f, h, "other!", 6); /* already held: kept as it was */
    char *c = sn_fcache_lookup(f, h, &len);
    cr_assert_not_null(c);
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(c, "code-1", 6), 0);
    free(c);
    hash_of(2, h);
    cr_assert_null(sn_fcache_lookup(f, h, &len), "hashes sharing 8 bytes are different keys");
    sn_fcache_store(f, h, "", 0);
    c = sn_fcache_lookup(f, h, &len);
    cr_assert_not_null(c, "empty code is code");
    cr_assert_eq(len, 0);
    free(c);
    uint64_t hits, misses;
    sn_fcache_counts(f, &hits, &misses);
    cr_assert_eq(hits, 2);
    cr_assert_eq(misses, 2);
    sn_fcache_destroy(&f);
    cr_assert_null(f);
    sn_fcache_destroy(&f);
}

Test(sn_fcache, oldest_evicted_by_count)
{
    sn_fcache *f = sn_fcache_new();
    unsigned char h[16];
    for (unsigned i = 0; i < SN_FCACHE_ENTRIES + 10; i++) {
        hash_of(i, h);
        sn_fcache_store(f, h, (const char *)&i, sizeof i);
    }
    size_t len;
    for (unsigned i = 0; i < SN_FCACHE_ENTRIES + 10; i++) {
        hash_of(i, h);
        char *c = sn_fcache_lookup(f, h, &len);
        if (i < 10) {
            cr_assert_null(c, "entry %u should be evicted", i);
        } else {
            cr_assert_not_null(c, "entry %u should be kept", i);
            cr_assert_eq(memcmp(c, &i, sizeof i), 0);
        }
        free(c);
    }
    sn_fcache_destroy(&f);
}

Test(sn_fcache, oldest_evicted_by_bytes)
{
    sn_fcache *f = sn_fcache_new();
    size_t big = SN_FCACHE_BYTES / 3 + 1;
    char *code = calloc(1, big);
    unsigned char h[16];
    for (unsigned i = 0; i < 3; i++) {
        hash_of(i, h);
        sn_fcache_store(f, h, code, big);
    }
    hash_of(99, h);
    sn_fcache_store(f, h, code, SN_FCACHE_BYTES + 1); /* too big to keep at all */
    size_t len;
    char *c = sn_fcache_lookup(f, h, &len);
    cr_assert_null(c);
    hash_of(0, h);
    cr_assert_null(c = sn_fcache_lookup(f, h, &len), "the oldest made room");
    for (unsigned i = 1; i < 3; i++) {
        hash_of(i, h);
        c = sn_fcache_lookup(f, h, &len);
        cr_assert_not_null(c);
        free(c);
    }
    free(code);
    sn_fcache_destroy(&f);
}
