/* sn_node's shutdown: the actors' VMs close while the runtime still stands, and whatever a
 * closing VM asks of the node (post, spawn, submit, timer, lock) is refused or dropped
 * cleanly, never run on a freed scheduler (issue 12: a finalizer calling stage.signal at
 * exit segfaulted the node on a null sn_sched). Scripts can no longer make finalizers
 * (docs/governor.md), so a VM whose close calls the node stands in for one; ASan checks
 * that nothing is touched after it is freed and that nothing leaks. */
#include "fake_vm.h"
#include "sn_actor.h"
#include "sn_error.h"
#include "sn_jobs.h"
#include "sn_node.h"

#include <criterion/criterion.h>
#include <string.h>

typedef struct closing {
    sn_node *node;
    uint64_t other; /* another actor, still in the table */
    int post, spawn, lock, closes;
} closing;

static closing seen;

static int vm_open(void *ud, const sn_vm_actor *conf, void **vm)
{
    (void)ud;
    *vm = (void *)(uintptr_t)conf->id;
    return SN_OK;
}

/* What a finalizer did at exit: every call into the node a script could make. */
static void vm_close(void *ud, void *vm)
{
    (void)ud;
    uint64_t self = (uint64_t)(uintptr_t)vm;
    sn_node *n = seen.node;
    seen.closes++;
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, "x", NULL, "w", "v", 1);
    seen.post = sn_node_post(n, seen.other != self ? seen.other : 1, m, 0);
    if (seen.post != SN_OK)
        sn_msg_destroy(&m);
    uint64_t id = 0;
    seen.spawn = sn_node_spawn(n, "late", "late.lua", NULL, 0, &id);
    sn_node_submit(n, sn_job_new(0, self, 0, "j", 1, "w", 1));
    sn_node_timer_arm(n, sn_node_next_id(n), self, 10);
    seen.lock = sn_node_lock(n, SN_LOCK_ACQUIRE, "L", self, "got", "d", 1, 0);
}

/* Mail is taken off and dropped: the actor goes idle. */
static void vm_run(sn_task *t, void *worker)
{
    (void)worker;
    sn_actor *a = sn_actor_of_task(t);
    sn_msg *m;
    while ((m = sn_mailbox_pop(sn_actor_mailbox(a))))
        sn_msg_destroy(&m);
    sn_actor_release(&a);
}

static void vm_job(sn_task *t, void *worker)
{
    (void)worker;
    sn_job *job = sn_job_of_task(t);
    sn_job_destroy(&job);
}

static const sn_vm_ops closing_vm = {.actor_open = vm_open,
                                     .actor_close = vm_close,
                                     .actor_run = vm_run,
                                     .worker_init = fake_vm_worker_init,
                                     .worker_fini = fake_vm_worker_fini,
                                     .worker_busy_for = fake_vm_busy_for,
                                     .job_run = vm_job};

Test(sn_node_shutdown, a_closing_vm_finds_the_runtime_standing_and_refusing)
{
    sn_log *log = sn_log_new(stderr, SN_LOG_ERROR);
    sn_opts o;
    memset(&o, 0, sizeof o);
    o.preload = "preload";
    o.threads = 2;
    o.name = "here";
    o.shutdown_ms = 5000;
    sn_node *n = sn_node_new(&o, log, &closing_vm);
    cr_assert_not_null(n);
    memset(&seen, 0, sizeof seen);
    seen.node = n;
    uint64_t a, b;
    cr_assert_eq(sn_node_spawn(n, "w", "w.lua", NULL, 0, &a), SN_OK);
    cr_assert_eq(sn_node_spawn(n, "w", "w.lua", NULL, 0, &b), SN_OK);
    seen.other = b;
    sn_node_stop(n); /* what sn_node_run does once its loop has ended */
    cr_assert_eq(seen.closes, 2, "both VMs closed during sn_node_stop, not later");
    cr_assert_eq(seen.post, SN_ECLOSED, "a post while stopping: %s", sn_strerror(seen.post));
    cr_assert_eq(seen.spawn, SN_ECLOSED, "a spawn while stopping: %s", sn_strerror(seen.spawn));
    cr_assert_eq(seen.lock, SN_ECLOSED, "a lock while stopping: %s", sn_strerror(seen.lock));
    sn_node_destroy(&n);
    sn_log_destroy(&log);
}
