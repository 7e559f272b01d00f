/* sn_shared: versions, references to values, and the update lock. */
#include "sn_error.h"
#include "sn_shared.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

Test(sn_shared, versions_and_values)
{
    sn_shared *s = sn_shared_new();
    int err;
    sn_shared_var *v = sn_shared_var_of(s, "X", &err);
    cr_assert_not_null(v);
    cr_assert_eq(sn_shared_var_of(s, "X", &err), v, "one variable per name");
    cr_assert_eq(sn_shared_version(v), 0);
    uint64_t ver;
    cr_assert_null(sn_shared_read(v, &ver), "unset");
    cr_assert_eq(sn_shared_publish(v, "one", 3, &ver), SN_OK);
    cr_assert_eq(ver, 1);
    sn_blob *b = sn_shared_read(v, &ver);
    cr_assert_eq(sn_shared_publish(v, "two!", 4, NULL), SN_OK);
    cr_assert_eq(sn_blob_len(b), 3, "a reader keeps the version it read");
    cr_assert_eq(memcmp(sn_blob_data(b), "one", 3), 0);
    sn_blob_release(b);
    cr_assert_eq(sn_shared_version(v), 2);
    cr_assert_eq(sn_shared_publish(v, NULL, 0, NULL), SN_OK);
    cr_assert_null(sn_shared_read(v, &ver), "len 0 unsets");
    sn_shared_destroy(&s);
    cr_assert_null(s);
}

static sn_shared_var *counter;

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        sn_shared_lock(counter);
        sn_shared_lock(counter); /* recursive */
        uint64_t ver;
        sn_blob *b = sn_shared_read(counter, &ver);
        int n = 0;
        if (b)
            memcpy(&n, sn_blob_data(b), sizeof n);
        sn_blob_release(b);
        n++;
        sn_shared_publish(counter, &n, sizeof n, NULL);
        sn_shared_unlock(counter);
        sn_shared_unlock(counter);
    }
    return NULL;
}

Test(sn_shared, update_lock_serializes)
{
    sn_shared *s = sn_shared_new();
    int err;
    counter = sn_shared_var_of(s, "C", &err);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, bump, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    uint64_t ver;
    sn_blob *b = sn_shared_read(counter, &ver);
    int n;
    memcpy(&n, sn_blob_data(b), sizeof n);
    sn_blob_release(b);
    cr_assert_eq(n, 8000);
    sn_shared_destroy(&s);
}
