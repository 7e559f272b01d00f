/* sn_vm: how the runtime drives an actor's virtual machine without knowing its language.
 * main supplies the table (the Lua bindings implement it); the runtime holds each VM as an
 * opaque pointer, like sn_sched_hooks does for worker data. */
#ifndef SN_VM_H
#define SN_VM_H

#include "sn_limits.h"
#include "sn_log.h"
#include "sn_sched.h"

#include <stddef.h>
#include <stdint.h>

struct sn_node;
struct sn_actor;

/* What a VM is made for: one actor. Strings belong to the actor and outlive its VM. */
typedef struct sn_vm_actor {
    struct sn_node *node;
    struct sn_actor *actor; /* not a reference: the actor owns the VM */
    uint64_t id;
    const char *stage;
    const char *name;
    const char *node_name;  /* process.name */
    const char *preload;    /* folder of preload files */
    int preload_required;   /* 1 when the user named the folder: it must exist */
    const char *script;     /* process.args[0] */
    char *const *args;      /* process.args[1..] */
    int nargs;
    double start;           /* node start, monotonic seconds */
    const sn_limits *limits;
    sn_log *log;
    _Atomic size_t *memory; /* where the VM counts the bytes it holds (any thread reads) */
} sn_vm_actor;

/* What a worker's VM is made for: one worker thread of the node. */
typedef struct sn_vm_worker {
    struct sn_node *node;
    int index;
    const char *node_name;
    const char *preload;
    int preload_required;
    double start;
    sn_log *log;
} sn_vm_worker;

typedef struct sn_vm_ops {
    /* actor_open: makes the actor's VM and runs the preload files, on the calling thread.
     * SN_OK with *vm, or SN_ENOMEM / SN_ENOENT / SN_ELUA (logged) and *vm NULL. */
    int (*actor_open)(void *ud, const sn_vm_actor *conf, void **vm);
    /* actor_close: frees a VM of actor_open; the thread that holds the actor last. */
    void (*actor_close)(void *ud, void *vm);
    /* actor_run: the actor task: a batch of its mail (see sn_actor_of_task). Workers. */
    void (*actor_run)(sn_task *t, void *worker);
    /* worker_init / worker_fini: a worker thread's own data (see sn_sched_hooks); init may
     * return NULL (logged): that worker then fails each job it is given. */
    void *(*worker_init)(void *ud, const sn_vm_worker *conf);
    void (*worker_fini)(void *ud, void *worker);
    /* worker_busy_for: seconds the worker has been on its current entry (0 when idle), with
     * copies of who and what, for the watchdog. Any thread. */
    double (*worker_busy_for)(void *ud, void *worker, char *who, size_t wholen, char *what,
                              size_t whatlen);
    /* job_run: the job task (see sn_job_of_task). Workers. */
    void (*job_run)(sn_task *t, void *worker);
    void *ud;
} sn_vm_ops;

#endif
