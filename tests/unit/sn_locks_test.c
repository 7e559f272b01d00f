/* sn_locks: grant order, release, extension and expiry. */
#include "sn_error.h"
#include "sn_locks.h"

#include <criterion/criterion.h>

static uint64_t delivered[16];
static int ndelivered;

static void deliver(sn_lock_req *g, void *ud)
{
    (void)ud;
    delivered[ndelivered++] = g->actor;
    sn_lock_req_destroy(&g);
}

Test(sn_locks, grant_order_release_and_expiry)
{
    sn_locks *l = sn_locks_new(0.1);
    sn_lock_req *g;
    cr_assert_eq(sn_locks_acquire(l, "db", "", 1, "cb", "x", 1, 0.0, &g), SN_OK);
    cr_assert_not_null(g, "a free lock is granted at once");
    cr_assert_eq(g->actor, 1);
    cr_assert_str_eq(g->cb, "cb");
    sn_lock_req_destroy(&g);
    cr_assert_eq(sn_locks_acquire(l, "db", "", 2, "cb", "", 0, 0.01, &g), SN_OK);
    cr_assert_null(g, "held: actor 2 waits");
    cr_assert_eq(sn_locks_acquire(l, "db", "", 3, "cb", "", 0, 0.02, &g), SN_OK);
    cr_assert_null(g);
    cr_assert_eq(sn_locks_release(l, "db", "", 2, 0.03, &g), SN_ENOENT, "only the holder releases");
    cr_assert_eq(sn_locks_release(l, "db", "", 1, 0.03, &g), SN_OK);
    cr_assert_eq(g->actor, 2, "granted in arrival order");
    sn_lock_req_destroy(&g);
    /* actor 2 holds from 0.03 until 0.13; extend to 0.03 + 0.5 */
    cr_assert_eq(sn_locks_extend(l, "db", "", 2, 500, 0.03), SN_OK);
    cr_assert_eq(sn_locks_extend(l, "db", "", 3, 500, 0.03), SN_ENOENT);
    double next = sn_locks_expire(l, 0.2, deliver, NULL);
    cr_assert_eq(ndelivered, 0, "extended: not expired at 0.2");
    cr_assert_float_eq(next, 0.53, 1e-9);
    next = sn_locks_expire(l, 0.6, deliver, NULL);
    cr_assert_eq(ndelivered, 1, "expired: the next waiter is granted");
    cr_assert_eq(delivered[0], 3);
    cr_assert_float_eq(next, 0.7, 1e-9, "a new lease of 100 ms");
    next = sn_locks_expire(l, 0.8, deliver, NULL);
    cr_assert_eq(next, 0, "nobody holds anything");
    cr_assert_eq(sn_locks_acquire(l, "db", "", 4, "cb", "", 0, 1.0, &g), SN_OK);
    cr_assert_not_null(g, "free again");
    sn_lock_req_destroy(&g);
    sn_locks_destroy(&l);
    cr_assert_null(l);
}
