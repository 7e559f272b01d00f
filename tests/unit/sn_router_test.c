/* sn_router: round-robin spreads evenly; removal; broadcast lists; unknown stages. */
#include "sn_error.h"
#include "sn_router.h"

#include <criterion/criterion.h>

Test(sn_router, round_robin_spreads_evenly)
{
    sn_router *r = sn_router_new();
    for (uint64_t id = 10; id < 13; id++)
        cr_assert_eq(sn_router_add(r, "w", id), SN_OK);
    int hits[3] = {0};
    for (int i = 0; i < 900; i++) {
        uint64_t id = sn_router_pick(r, "w", 0);
        cr_assert(id >= 10 && id < 13);
        hits[id - 10]++;
    }
    cr_assert_eq(hits[0], 300);
    cr_assert_eq(hits[1], 300);
    cr_assert_eq(hits[2], 300);
    uint64_t first = sn_router_pick(r, "w", 0);
    cr_assert_neq(sn_router_pick(r, "w", 0), first);
    sn_router_destroy(&r);
    cr_assert_null(r);
}

Test(sn_router, attempts_skip_and_end)
{
    sn_router *r = sn_router_new();
    sn_router_add(r, "w", 1);
    sn_router_add(r, "w", 2);
    uint64_t a = sn_router_pick(r, "w", 0), b = sn_router_pick(r, "w", 1);
    cr_assert_neq(a, b);
    cr_assert_eq(sn_router_pick(r, "w", 2), 0, "no third instance");
    cr_assert_eq(sn_router_pick(r, "nope", 0), 0);
    cr_assert_eq(sn_router_count(r, "nope"), 0);
    sn_router_destroy(&r);
}

static void count_stage(const char *stage, size_t n, void *ud)
{
    (void)stage;
    *(size_t *)ud += n;
}

Test(sn_router, remove_all_and_each)
{
    sn_router *r = sn_router_new();
    for (uint64_t id = 1; id <= 100; id++)
        sn_router_add(r, id % 2 ? "odd" : "even", id);
    sn_router_remove(r, "odd", 51);
    sn_router_remove(r, "odd", 52); /* not there: nothing */
    cr_assert_eq(sn_router_count(r, "odd"), 49);
    uint64_t ids[100];
    cr_assert_eq(sn_router_all(r, "even", ids, 100), 50);
    cr_assert_eq(ids[0], 2);
    cr_assert_eq(sn_router_all(r, "even", ids, 10), 10);
    size_t total = 0;
    sn_router_each(r, count_stage, &total);
    cr_assert_eq(total, 99);
    sn_router_destroy(&r);
}
