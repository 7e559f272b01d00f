/* sn_actors: the node's table of actors by id. A lookup takes a reference; the caller
 * releases it. Removing an actor drops the table's reference. Thread-safe. */
#ifndef SN_ACTORS_H
#define SN_ACTORS_H

#include "sn_actor.h"

#include <stdint.h>

typedef struct sn_actors sn_actors;

/* sn_actors_new: an empty table; NULL on out of memory. */
sn_actors *sn_actors_new(void);
/* sn_actors_destroy: releases every actor still in the table; NULL is fine; nulls *tp. */
void sn_actors_destroy(sn_actors **tp);

/* sn_actors_add: adds a (the table takes over the caller's reference). SN_OK or SN_ENOMEM. */
int sn_actors_add(sn_actors *t, sn_actor *a);
/* sn_actors_grab: the actor with id, with a new reference (caller releases), or NULL. */
sn_actor *sn_actors_grab(sn_actors *t, uint64_t id);
/* sn_actors_remove: drops the table's reference to actor id, if present. */
void sn_actors_remove(sn_actors *t, uint64_t id);
/* sn_actors_each: calls fn(a, ud) for every actor, with the table locked: fn must be quick
 * and must not call back into the table. */
void sn_actors_each(sn_actors *t, void (*fn)(sn_actor *a, void *ud), void *ud);
/* sn_actors_count: the number of actors in the table. */
size_t sn_actors_count(sn_actors *t);

#endif
