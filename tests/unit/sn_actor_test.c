/* sn_actor: the record drives its VM only through sn_vm_ops: open with the actor's own
 * strings, reset closes and opens again, the last release closes, memory is what the VM
 * counted. */
#include "sn_actor.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

typedef struct counts {
    int opens, closes, fail_next;
    char stage[32], name[32], preload[32];
    _Atomic size_t *memory;
} counts;

static int vm_open(void *ud, const sn_vm_actor *conf, void **vm)
{
    counts *c = ud;
    c->opens++;
    snprintf(c->stage, sizeof c->stage, "%s", conf->stage);
    snprintf(c->name, sizeof c->name, "%s", conf->name);
    snprintf(c->preload, sizeof c->preload, "%s", conf->preload);
    c->memory = conf->memory;
    atomic_store(conf->memory, 1000u * (size_t)c->opens);
    *vm = c;
    if (c->fail_next) {
        c->fail_next = 0;
        return SN_ELUA; /* preload failed: the VM exists, the caller closes it */
    }
    return SN_OK;
}

static void vm_close(void *ud, void *vm)
{
    counts *c = ud;
    cr_assert_eq(vm, c);
    c->closes++;
}

static void vm_run(sn_task *t, void *worker)
{
    (void)t, (void)worker;
}

static sn_log *log_;

static void setup(void)
{
    log_ = sn_log_new(stderr, SN_LOG_ERROR);
}

static void teardown(void)
{
    sn_log_destroy(&log_);
}

TestSuite(sn_actor, .init = setup, .fini = teardown);

static sn_actor *make(counts *c, sn_vm_ops *ops, int *err)
{
    *ops = (sn_vm_ops){.actor_open = vm_open, .actor_close = vm_close, .actor_run = vm_run,
                       .ud = c};
    char stage[] = "st", name[] = "nm";
    sn_actor_conf conf = {.id = 7, .stage = stage, .name = name, .node_name = "n",
                          .preload = "pre", .limits = SN_LIMITS_DEFAULT,
                          .log = log_, .vm = ops};
    sn_actor *a = sn_actor_new(&conf, err);
    memset(stage, 'x', 2); /* the actor keeps copies */
    memset(name, 'x', 2);
    return a;
}

Test(sn_actor, drives_its_vm_through_the_ops)
{
    counts c = {0};
    sn_vm_ops ops;
    int err;
    sn_actor *a = make(&c, &ops, &err);
    cr_assert_not_null(a);
    cr_assert_eq(c.opens, 1);
    cr_assert_str_eq(c.stage, "st");
    cr_assert_str_eq(c.name, "nm");
    cr_assert_str_eq(c.preload, "pre");
    cr_assert_eq(sn_actor_vm(a), &c);
    cr_assert_eq(sn_actor_task(a)->run, vm_run);
    cr_assert_eq(sn_actor_memory(a), 1000);
    cr_assert_eq(sn_actor_reset(a), SN_OK);
    cr_assert_eq(c.closes, 1);
    cr_assert_eq(c.opens, 2);
    cr_assert_eq(sn_actor_memory(a), 2000, "the counter outlives the VM it counted for");
    sn_actor_release(&a);
    cr_assert_null(a);
    cr_assert_eq(c.closes, 2);
}

Test(sn_actor, a_vm_that_fails_to_open_is_closed)
{
    counts c = {.fail_next = 1};
    sn_vm_ops ops;
    int err;
    sn_actor *a = make(&c, &ops, &err);
    cr_assert_null(a);
    cr_assert_eq(err, SN_ELUA);
    cr_assert_eq(c.opens, 1);
    cr_assert_eq(c.closes, 1);
}
