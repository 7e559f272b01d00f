/* sn_views: /metrics and the status JSON of a real node (its VM holds its mail, no Lua),
 * built from the runtime's getters alone: no cluster, no function cache. */
#include "fake_vm.h"
#include "sn_actor.h"
#include "sn_error.h"
#include "sn_views.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int vm_open(void *ud, const sn_vm_actor *conf, void **vm)
{
    (void)ud;
    atomic_store(conf->memory, 4096);
    *vm = NULL;
    return SN_OK;
}

static const sn_vm_ops no_vm = {.actor_open = vm_open,
                                .actor_close = fake_vm_close,
                                .actor_run = fake_vm_keep_mail,
                                .worker_init = fake_vm_worker_init,
                                .worker_fini = fake_vm_worker_fini,
                                .worker_busy_for = fake_vm_busy_for,
                                .job_run = fake_vm_job};

Test(sn_views, metrics_and_status_from_the_runtime_getters)
{
    sn_log *log = sn_log_new(stderr, SN_LOG_ERROR);
    sn_opts o;
    memset(&o, 0, sizeof o);
    o.preload = "preload";
    o.threads = 1;
    o.name = "viewed";
    sn_node *n = sn_node_new(&o, log, &no_vm);
    cr_assert_not_null(n);
    sn_views *v = sn_views_new(n, NULL, NULL);
    cr_assert_not_null(v);
    uint64_t id;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sn_node_spawn(n, "web", "x.lua", NULL, 0, &id), SN_OK);
    sn_log_write(log, SN_LOG_ERROR, "web#1", "it broke\ntraceback");

    char *body;
    size_t len;
    cr_assert_eq(sn_views_metrics(v, &body, &len), SN_OK);
    cr_assert_not_null(strstr(body, "stage_actors{"), "%s", body);
    cr_assert_not_null(strstr(body, "stage=\"web\"} 3"), "%s", body);
    cr_assert_not_null(strstr(body, "stage_lua_memory_bytes{"), "%s", body);
    cr_assert_not_null(strstr(body, "stage_wire_seq_gaps_total"), "%s", body);
    free(body);

    cr_assert_eq(sn_views_status_self(v, &body, &len), SN_OK);
    cr_assert_not_null(strstr(body, "\"viewed\""), "%s", body);
    cr_assert_not_null(strstr(body, "\"web\""), "%s", body);
    cr_assert_not_null(strstr(body, "it broke"), "%s", body);
    cr_assert_null(strstr(body, "traceback"), "the first line only: %s", body);
    free(body);

    cr_assert_eq(sn_views_status(v, &body, &len), SN_OK);
    cr_assert_not_null(strstr(body, "\"members\""), "%s", body);
    free(body);
    sn_views_destroy(&v);
    sn_node_destroy(&n);
    sn_log_destroy(&log);
}
