/* sn_views: what /metrics, /status.json and the status a node shows its peers say: the
 * node's counters and sums from the runtime's getters, the cluster's and the function
 * cache's from theirs. */
#ifndef SN_VIEWS_H
#define SN_VIEWS_H

#include "sn_node.h"

#include <stddef.h>

struct sn_cluster;
struct sn_fcache;
struct sn_broker;

typedef struct sn_views sn_views;

/* sn_views_new: the views of node n, with its cluster c (NULL on a standalone node) and its
 * function cache fc; registers the wire sequence counters in the node's metrics. All three
 * outlive the views. NULL on out of memory (logged). Main thread. */
sn_views *sn_views_new(sn_node *n, struct sn_cluster *c, struct sn_fcache *fc);
/* sn_views_set_broker: the broker whose listeners the views show (stage_broker_* in
 * /metrics, "broker" in the status); it outlives the views. Main thread, before serving. */
void sn_views_set_broker(sn_views *v, struct sn_broker *b);
/* sn_views_destroy: NULL is fine; nulls *vp. */
void sn_views_destroy(sn_views **vp);

/* sn_views_metrics: the Prometheus text (sn_http_handlers.metrics; ud: the views). Caller
 * frees *body. SN_OK or SN_ENOMEM. Any thread. */
int sn_views_metrics(void *ud, char **body, size_t *len);
/* sn_views_status: the cluster's status JSON (sn_http_handlers.status). Any thread. */
int sn_views_status(void *ud, char **body, size_t *len);
/* sn_views_status_self: this node's own status JSON, for peers (sn_node_remote.status_self).
 * Any thread. */
int sn_views_status_self(void *ud, char **json, size_t *len);

#endif
