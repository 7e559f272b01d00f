/* sn_router: round-robin spreads evenly; removal; broadcast lists; unknown stages. */
#include "sn_error.h"
#include "sn_router.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

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

/* A node's registry replaces its stages in one step: a sender routing to a stage the node
 * keeps never finds it missing. (Dropped and then added again one stage at a time, a stage
 * had no route for a moment: bench_route's "no route to bNN", 1 run in 4.) */
enum { REG_STAGES = 500 };
static sn_router *reg_router;
static _Atomic int reg_done;

static void *route_all_the_time(void *arg)
{
    long *misses = arg;
    while (!reg_done) {
        sn_route out;
        if (!sn_router_route(reg_router, "s250", SN_SCOPE_REMOTE, 0, &out))
            (*misses)++;
    }
    return NULL;
}

Test(sn_router, set_node_never_shows_a_half_replaced_node)
{
    reg_router = sn_router_new();
    static char names[REG_STAGES][16];
    sn_router_stage v[REG_STAGES];
    for (int i = 0; i < REG_STAGES; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        v[i] = (sn_router_stage){names[i], 1};
    }
    cr_assert_eq(sn_router_set_node(reg_router, "b", v, REG_STAGES), SN_OK);
    long misses = 0;
    pthread_t t;
    reg_done = 0;
    cr_assert_eq(pthread_create(&t, NULL, route_all_the_time, &misses), 0);
    for (int k = 0; k < 2000; k++)
        cr_assert_eq(sn_router_set_node(reg_router, "b", v, REG_STAGES), SN_OK);
    reg_done = 1;
    pthread_join(t, NULL);
    cr_assert_eq(misses, 0, "s250 had no route %ld times", misses);
    /* and the set is replaced: a stage left out is gone, a count changes */
    v[0].count = 3;
    cr_assert_eq(sn_router_set_node(reg_router, "b", v, 100), SN_OK);
    sn_route gone;
    cr_assert_eq(sn_router_route(reg_router, "s250", SN_SCOPE_REMOTE, 0, &gone), 0);
    uint32_t c = 0;
    char node[1][SN_ROUTER_NODE_MAX];
    cr_assert_eq(sn_router_nodes(reg_router, "s0", node, &c, 1), 1);
    cr_assert_eq(c, 3);
    cr_assert_str_eq(node[0], "b");
    sn_router_destroy(&reg_router);
}
