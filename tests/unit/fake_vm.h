/* fake_vm.h: the parts of a VM without a language that the runtime's tests share (sn_vm_ops
 * needs every member). A test takes these and supplies what it tests itself: its own open,
 * close or run. Header-only: each test program includes it once. */
#ifndef SN_FAKE_VM_H
#define SN_FAKE_VM_H

#include "sn_actor.h"
#include "sn_error.h"
#include "sn_vm.h"

/* An actor that has no VM at all. */
static inline int fake_vm_open(void *ud, const sn_vm_actor *conf, void **vm)
{
    (void)ud, (void)conf;
    *vm = NULL;
    return SN_OK;
}

static inline void fake_vm_close(void *ud, void *vm)
{
    (void)ud, (void)vm;
}

/* Takes the actor's turn without popping: the mailbox stays scheduled and keeps its mail. */
static inline void fake_vm_keep_mail(sn_task *t, void *worker)
{
    (void)worker;
    sn_actor *a = sn_actor_of_task(t);
    sn_actor_release(&a);
}

static inline void *fake_vm_worker_init(void *ud, const sn_vm_worker *conf)
{
    (void)ud, (void)conf;
    return NULL;
}

static inline void fake_vm_worker_fini(void *ud, void *worker)
{
    (void)ud, (void)worker;
}

static inline double fake_vm_busy_for(void *ud, void *worker, char *who, size_t wl, char *what,
                                      size_t hl)
{
    (void)ud, (void)worker, (void)wl, (void)hl;
    who[0] = what[0] = '\0';
    return 0;
}

static inline void fake_vm_job(sn_task *t, void *worker)
{
    (void)t, (void)worker;
}

#endif
