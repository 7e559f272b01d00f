/* sn_node: one stage-node process: its settings, its event loop and its actors.
 * Everything a callback needs is reached from the node, never from a global. */
#ifndef SN_NODE_H
#define SN_NODE_H

#include "sn_log.h"
#include "sn_opts.h"

typedef struct sn_node sn_node;

/* sn_node_new: a node for the settings o (which must outlive it), logging to log.
 * NULL on out of memory (logged). */
sn_node *sn_node_new(const sn_opts *o, sn_log *log);
/* sn_node_destroy: stops and frees everything; NULL is fine; nulls *np. */
void sn_node_destroy(sn_node **np);

/* sn_node_run: starts the actors, runs the loop until nothing can happen any more, and
 * returns the process exit status: 0, or 1 when a top-level script failed. Main thread. */
int sn_node_run(sn_node *n);

#endif
