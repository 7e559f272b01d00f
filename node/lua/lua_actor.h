/* lua_actor: runs an actor's mail on its lua_State: its script, thread callbacks, and
 * (later) message handlers. */
#ifndef SN_LUA_ACTOR_H
#define SN_LUA_ACTOR_H

#include "sn_sched.h"

/* sn_actor_run: the actor task: handles a bounded batch of the actor's messages, one at a
 * time, then reschedules the actor if mail remains. Worker threads only. */
void sn_actor_run(sn_task *t, void *worker);

#endif
