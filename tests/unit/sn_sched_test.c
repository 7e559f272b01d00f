/* sn_sched: every pushed task runs once, on a worker, with that worker's data. */
#include "sn_error.h"
#include "sn_sched.h"

#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

static atomic_int ran, inits, finis, discarded;

static void *init(void *ud, int index)
{
    (void)ud;
    atomic_fetch_add(&inits, 1);
    return (void *)(intptr_t)(index + 100);
}

static void fini(void *ud, void *w)
{
    (void)ud;
    cr_assert_geq((intptr_t)w, 100);
    atomic_fetch_add(&finis, 1);
}

static void discard(void *ud, sn_task *t)
{
    (void)ud;
    (void)t;
    atomic_fetch_add(&discarded, 1);
}

static void run(sn_task *t, void *w)
{
    (void)t;
    cr_assert_geq((intptr_t)w, 100, "a task gets its worker's data");
    atomic_fetch_add(&ran, 1);
}

Test(sn_sched, every_task_runs_once)
{
    sn_sched_hooks h = {.worker_init = init, .worker_fini = fini, .discard = discard};
    int err;
    sn_sched *s = sn_sched_new(3, &h, &err);
    cr_assert_not_null(s);
    cr_assert_eq(sn_sched_workers(s), 3);
    enum { N = 100000 };
    sn_task *tasks = calloc(N, sizeof *tasks);
    for (int i = 0; i < N; i++) {
        tasks[i].run = run;
        sn_sched_push(s, &tasks[i]);
    }
    while (atomic_load(&ran) < N)
        sched_yield();
    sn_sched_destroy(&s);
    cr_assert_null(s);
    cr_assert_eq(atomic_load(&ran), N);
    cr_assert_eq(atomic_load(&inits), 3);
    cr_assert_eq(atomic_load(&finis), 3);
    free(tasks);
}
