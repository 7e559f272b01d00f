/* sn_actor: the actor record; its VM is made, run and closed through the sn_vm_ops. */
#include "sn_actor.h"
#include "sn_error.h"
#include "sn_stats.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_INTENSITY = 64 }; /* restart times remembered */

struct sn_actor {
    sn_task task; /* first: the run queue links actors through it */
    atomic_int refs;
    atomic_int failed;
    uint64_t id;
    char *stage;
    char *name;
    char *node_name;
    char *preload;
    int preload_required;
    sn_limits limits;
    sn_msg *start;                    /* a copy of the first message, for restarts */
    double restarts[MAX_INTENSITY];   /* times of the latest restarts, a ring */
    int nrestarts;
    sn_mailbox *mailbox;
    const sn_vm_ops *ops;
    sn_vm_actor vconf; /* strings point at the fields above */
    void *vm;
    _Atomic size_t memory; /* counted by the VM */
    sn_stats_stage counts; /* the stage's message series, resolved at creation */
    int counted;           /* counts is set (the actor belongs to a node) */
};

/* Makes the VM and runs the preload folder. */
static int open_vm(sn_actor *a)
{
    atomic_store(&a->memory, 0);
    return a->ops->actor_open(a->ops->ud, &a->vconf, &a->vm);
}

static void close_vm(sn_actor *a)
{
    if (a->vm)
        a->ops->actor_close(a->ops->ud, a->vm);
    a->vm = NULL;
}

sn_actor *sn_actor_new(const sn_actor_conf *conf, int *err)
{
    sn_actor *a = calloc(1, sizeof *a);
    if (!a || !(a->stage = strdup(conf->stage)) || !(a->name = strdup(conf->name)) ||
        !(a->node_name = strdup(conf->node_name)) || !(a->preload = strdup(conf->preload)) ||
        !(a->mailbox = sn_mailbox_new(conf->limits.mailbox, conf->limits.mailbox_bytes))) {
        sn_log_write(conf->log, SN_LOG_ERROR, conf->name, "cannot create actor: %s",
                     sn_strerror(SN_ENOMEM));
        if (a)
            atomic_init(&a->refs, 1);
        sn_actor_release(&a);
        *err = SN_ENOMEM;
        return NULL;
    }
    atomic_init(&a->refs, 1);
    atomic_init(&a->failed, 0);
    sn_mailbox_govern(a->mailbox, &a->memory, conf->limits.memory_cap); /* heap + queue */
    a->id = conf->id;
    a->ops = conf->vm;
    a->task.run = conf->vm->actor_run;
    a->limits = conf->limits;
    a->preload_required = conf->preload_required;
    if (conf->stats) {
        sn_stats_stage_init(conf->stats, a->stage, &a->counts);
        a->counted = 1;
    }
    a->vconf = (sn_vm_actor){
        .node = conf->node,
        .actor = a,
        .id = a->id,
        .stage = a->stage,
        .name = a->name,
        .node_name = a->node_name,
        .preload = a->preload,
        .preload_required = a->preload_required,
        .script = conf->script,
        .args = conf->args,
        .nargs = conf->nargs,
        .start = conf->start,
        .limits = &a->limits,
        .log = conf->log,
        .memory = &a->memory,
    };
    int rc = open_vm(a);
    if (rc != SN_OK) {
        sn_actor_release(&a);
        *err = rc;
        return NULL;
    }
    *err = SN_OK;
    return a;
}

void sn_actor_grab(sn_actor *a)
{
    atomic_fetch_add(&a->refs, 1);
}

void sn_actor_release(sn_actor **ap)
{
    if (!ap || !*ap)
        return;
    sn_actor *a = *ap;
    *ap = NULL;
    if (atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    if (a->ops)
        close_vm(a);
    sn_mailbox_destroy(&a->mailbox);
    sn_msg_destroy(&a->start);
    free(a->preload);
    free(a->stage);
    free(a->name);
    free(a->node_name);
    free(a);
}

uint64_t sn_actor_id(const sn_actor *a)
{
    return a->id;
}

const char *sn_actor_name(const sn_actor *a)
{
    return a->name;
}

const char *sn_actor_stage(const sn_actor *a)
{
    return a->stage;
}

sn_mailbox *sn_actor_mailbox(sn_actor *a)
{
    return a->mailbox;
}

void *sn_actor_vm(sn_actor *a)
{
    return a->vm;
}

sn_task *sn_actor_task(sn_actor *a)
{
    return &a->task;
}

sn_actor *sn_actor_of_task(sn_task *t)
{
    return (sn_actor *)((char *)t - offsetof(sn_actor, task));
}

struct sn_node *sn_actor_node(const sn_actor *a)
{
    return a->vconf.node;
}

const sn_limits *sn_actor_limits(const sn_actor *a)
{
    return &a->limits;
}

int sn_actor_keep_start(sn_actor *a, const sn_msg *start)
{
    sn_msg_destroy(&a->start);
    a->start = sn_msg_new(start->kind, start->name, start->reply, start->src_stage, start->data,
                          start->len);
    return a->start ? SN_OK : SN_ENOMEM;
}

const sn_msg *sn_actor_start_msg(const sn_actor *a)
{
    return a->start;
}

int sn_actor_may_restart(sn_actor *a, double now, int *count)
{
    const sn_limits *l = &a->limits;
    if (l->restart != SN_RESTART_ALWAYS || !a->start)
        return 0;
    int keep = l->intensity < MAX_INTENSITY ? l->intensity : MAX_INTENSITY;
    int recent = 0; /* restarts within the period: OTP's intensity/period */
    for (int i = 0; i < a->nrestarts && i < keep; i++)
        recent += now - a->restarts[i] <= l->period;
    *count = recent + 1;
    if (recent >= l->intensity)
        return 0;
    memmove(&a->restarts[1], &a->restarts[0], (size_t)(MAX_INTENSITY - 1) * sizeof(double));
    a->restarts[0] = now;
    if (a->nrestarts < MAX_INTENSITY)
        a->nrestarts++;
    return 1;
}

int sn_actor_reset(sn_actor *a)
{
    close_vm(a);
    return open_vm(a);
}

void sn_actor_close(sn_actor *a)
{
    close_vm(a);
}

void sn_actor_fail(sn_actor *a)
{
    atomic_store(&a->failed, 1);
}

int sn_actor_failed(const sn_actor *a)
{
    return atomic_load(&a->failed);
}

const sn_stats_stage *sn_actor_counts(const sn_actor *a)
{
    return a->counted ? &a->counts : NULL;
}

size_t sn_actor_memory(const sn_actor *a)
{
    return atomic_load_explicit(&a->memory, memory_order_relaxed);
}
