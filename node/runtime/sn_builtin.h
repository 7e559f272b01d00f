/* sn_builtin: where the built-in stages (index, route, ticket) live in a cluster: one home
 * per stage, the same on every node (docs/stages.md), started there on demand from the
 * file <preload>/builtin/STAGE.stage. */
#ifndef SN_BUILTIN_H
#define SN_BUILTIN_H

#include "sn_node.h"

#include <stddef.h>

/* sn_builtin_is: 1 when stage is a built-in stage's name, else 0. */
int sn_builtin_is(const char *stage);

/* sn_builtin_home: the home of built-in stage: among the alive nodes that run it (this one
 * included) the one ranked first by rendezvous hashing of (stage, node name); when none runs
 * it, the first of all alive members (as the ordered locks choose a lock's home). Returns 1
 * with home filled when that is another node, 0 when it is this node (or there is no
 * cluster). Any thread. */
int sn_builtin_home(sn_node *n, const char *stage, char *home, size_t cap);

/* sn_builtin_start: makes sure this node runs built-in stage: SN_OK when it does (started
 * now, logged, or already), SN_ENOENT when stage is not built in or its file is missing
 * (then it is routed like any stage), else the spawn's error (logged; the next use tries
 * again). Two callers at once start one actor. Any thread; the state is made on it. */
int sn_builtin_start(sn_node *n, const char *stage);

#endif
