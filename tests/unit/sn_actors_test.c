/* sn_actors: ids to actors, with references; many actors, removal, growth. */
#include "sn_actors.h"
#include "sn_error.h"

#include <criterion/criterion.h>

/* The table never runs an actor: a VM that is nothing. */
static int vm_open(void *ud, const sn_vm_actor *conf, void **vm)
{
    (void)ud, (void)conf;
    *vm = NULL;
    return SN_OK;
}

static void vm_close(void *ud, void *vm)
{
    (void)ud, (void)vm;
}

static const sn_vm_ops no_vm = {.actor_open = vm_open, .actor_close = vm_close};

static sn_actor *make(sn_log *log, uint64_t id)
{
    char name[32];
    snprintf(name, sizeof name, "a%llu", (unsigned long long)id);
    sn_actor_conf conf = {.id = id, .stage = "s", .name = name, .node_name = "n",
                          .preload = "no-such-dir", .limits = SN_LIMITS_DEFAULT, .log = log,
                          .vm = &no_vm};
    int err;
    sn_actor *a = sn_actor_new(&conf, &err);
    cr_assert_not_null(a, "%s", sn_strerror(err));
    return a;
}

Test(sn_actors, add_grab_remove)
{
    sn_log *log = sn_log_new(stderr, SN_LOG_ERROR);
    sn_actors *t = sn_actors_new();
    for (uint64_t id = 1; id <= 300; id++)
        cr_assert_eq(sn_actors_add(t, make(log, id)), SN_OK);
    cr_assert_eq(sn_actors_count(t), 300);
    sn_actor *a = sn_actors_grab(t, 123);
    cr_assert_not_null(a);
    cr_assert_str_eq(sn_actor_name(a), "a123");
    sn_actors_remove(t, 123);
    cr_assert_null(sn_actors_grab(t, 123));
    cr_assert_str_eq(sn_actor_name(a), "a123", "our reference keeps it alive");
    sn_actor_release(&a);
    cr_assert_null(a);
    for (uint64_t id = 1; id <= 300; id += 2)
        sn_actors_remove(t, id);
    cr_assert_eq(sn_actors_count(t), 150 - 1 + (123 % 2 == 1));
    a = sn_actors_grab(t, 300);
    cr_assert_not_null(a);
    sn_actor_release(&a);
    sn_actors_destroy(&t);
    sn_log_destroy(&log);
}
