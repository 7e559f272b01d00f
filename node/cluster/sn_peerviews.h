/* sn_peerviews: the status views nodes gather from each other for the dashboard: a STATUS_REQ
 * to members, answered with this node's view (from the hooks) as STATUS, which is kept in
 * the member's record. Loop thread. */
#ifndef SN_PEERVIEWS_H
#define SN_PEERVIEWS_H

#include "sn_cluster_hooks.h"
#include "sn_link.h"
#include "sn_members.h"
#include "sn_wire.h"

#include <stdint.h>

/* sn_peerviews_ask: sends STATUS_REQ (request id `request`) from self at inc to every alive
 * member that is probed in this period (m->target). */
void sn_peerviews_ask(sn_link *l, sn_members *ms, const char *self, uint64_t inc, uint64_t request);
/* sn_peerviews_frame: a STATUS_REQ (answered back to the sender identity id on the listening
 * socket when there is one, else on m's control connection) or a STATUS (kept). */
void sn_peerviews_frame(sn_link *l, const sn_cluster_hooks *h, sn_members *ms, const char *self,
                        uint64_t inc, const sn_wire_frame *f, const void *id, size_t idlen,
                        double now);

#endif
