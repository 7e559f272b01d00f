/* sn_registry: the registry of which stages run where: the REGISTRY frame this node
 * announces (every local stage with its actor count), and what another member announced,
 * applied to the node's router through the hooks. Loop thread. */
#ifndef SN_REGISTRY_H
#define SN_REGISTRY_H

#include "sn_buf.h"
#include "sn_cluster_hooks.h"
#include "sn_link.h"
#include "sn_members.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

/* sn_registry_encode: appends the REGISTRY of this node (self at inc, version) to out: every
 * stage or none. SN_OK; SN_ELIMIT (over lim's max_stages or max_frame) or SN_ENOMEM with err
 * filled. *nstages: how many stages there are. */
int sn_registry_encode(const sn_cluster_hooks *h, const char *self, uint64_t inc,
                       uint64_t version, const sn_wire_limits *lim, sn_buf *out,
                       size_t *nstages, char *err, size_t errlen);
/* sn_registry_announce: sends this node's REGISTRY (self at inc) on the control connection
 * of every alive or suspect member of ms: all of them when changed or not probing, else the
 * ones probed this period and the ones owed it (m->registry_owed: new or restarted members,
 * whose record of us is empty; the flag is cleared once sent). A refresh while probing keeps
 * *version; otherwise it goes up. A
 * registry over the limits is logged, once until it fits again (*too_big), never cut short
 * silently. Loop thread, with the link held. */
void sn_registry_announce(const sn_cluster_hooks *h, sn_link *link, sn_members *ms,
                          sn_log *log, const char *self, uint64_t inc, int changed,
                          uint64_t *version, int *too_big);
/* sn_registry_apply: r came from a member of ms: when newer than what it announced before,
 * its stages replace the old ones in the router (h) and in the member's record. */
void sn_registry_apply(const sn_cluster_hooks *h, sn_members *ms, const sn_wire_registry *r);

#endif
