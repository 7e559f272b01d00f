/* lua_actor: an actor's VM is a lua_State: made and closed here, and its mail (its script,
 * thread callbacks, message handlers) run on it. Implements the runtime's sn_vm_ops. */
#ifndef SN_LUA_ACTOR_H
#define SN_LUA_ACTOR_H

#include "lua_host.h"
#include "sn_sched.h"
#include "sn_vm.h"

/* sn_lua_actor_ops: the table main gives the node: these actor functions and lua_worker's;
 * ctx (the ops' ud) must outlive the node. */
void sn_lua_actor_ops(sn_lua_ctx *ctx, sn_vm_ops *ops);

/* sn_lua_actor_open / sn_lua_actor_close: sn_vm_ops.actor_open / actor_close (ud: the
 * sn_lua_ctx). open may return an error with *vm set (preload failed): close it. */
int sn_lua_actor_open(void *ud, const sn_vm_actor *conf, void **vm);
void sn_lua_actor_close(void *ud, void *vm);

/* sn_lua_actor_run: the actor task: handles a bounded batch of the actor's messages, one at a
 * time, then reschedules the actor if mail remains. Worker threads only. */
void sn_lua_actor_run(sn_task *t, void *worker);

#endif
