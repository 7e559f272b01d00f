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
 * it, the first of all alive members (as the ordered locks choose a lock's home), and then
 * *hashed is 1: right only when this node knows every member's registry (the caller checks).
 * Returns 1 with home filled when that is another node, 0 when it is this node (or there is
 * no cluster). Any thread. */
int sn_builtin_home(sn_node *n, const char *stage, char *home, size_t cap, int *hashed);

/* sn_builtin_setting: the value of --set KEY=N among the built-in stages' settings (e.g.
 * "builtin.pending"), or def when it was not given. Any thread. */
long sn_builtin_setting(sn_node *n, const char *key, long def);

/* sn_builtin_start: makes sure this node runs built-in stage: SN_OK when it does (started
 * now, logged, or already), SN_ENOENT when stage is not built in or its file is missing
 * (then it is routed like any stage), else the spawn's error (logged; the next use tries
 * again). Two callers at once start one actor; a home that died (it left the router) is
 * started afresh. Any thread; the state is made on it. */
int sn_builtin_start(sn_node *n, const char *stage);

struct ev_loop;
typedef struct sn_builtin sn_builtin;

/* sn_builtin_new: the queue of frames for built-in stages not started yet, on loop (the
 * node's loop thread). NULL when out of memory. sn_builtin_destroy: after the cluster is gone
 * (nothing delivers any more); waits for a start thread; drops what is held; takes NULL. */
sn_builtin *sn_builtin_new(sn_node *n, struct ev_loop *loop);
void sn_builtin_destroy(sn_builtin **bp);

/* sn_builtin_deliver: sn_node_deliver, except that a frame for a built-in stage this node
 * does not run yet is held (copied) while a thread of its own starts the stage, then
 * delivered in arrival order; the loop thread never waits. SN_OK (delivered or held),
 * SN_EFULL (--set builtin.pending=N frames, default 100000, held for that stage already;
 * logged once), SN_ENOMEM, or
 * sn_node_deliver's errors. A held frame the stage cannot take after all is dropped and
 * logged. Loop thread only. */
int sn_builtin_deliver(sn_builtin *b, const sn_wire_message *m, int trusted);

#endif
