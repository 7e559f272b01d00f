/* sn_peerviews: one STATUS_REQ encoded once per period, one STATUS per request. */
#include "sn_peerviews.h"
#include "sn_error.h"
#include "sn_peers.h"

#include <stdlib.h>

void sn_peerviews_ask(sn_link *l, sn_members *ms, const char *self, uint64_t inc, uint64_t request)
{
    sn_wire_frame sr;
    sn_wire_frame_init(&sr, SN_WIRE_STATUS_REQ);
    sr.u.status.node = self;
    sr.u.status.incarnation = inc;
    sr.u.status.request = request;
    if (sn_link_encode(l, &sr) != SN_OK)
        return;
    for (sn_member *m = sn_members_first(ms); m; m = m->next) {
        if (m->state == SN_MEMBER_ALIVE && m->target)
            sn_link_send_encoded(l, sn_peers_conn(l, m, 0));
    }
}

void sn_peerviews_frame(sn_link *l, const sn_cluster_hooks *h, sn_members *ms, const char *self,
                        uint64_t inc, const sn_wire_frame *f, const void *id, size_t idlen,
                        double now)
{
    sn_member *m = sn_members_find(ms, f->u.status.node);
    if (!m)
        return;
    if (f->kind == SN_WIRE_STATUS) {
        sn_members_set_status(ms, m, f->u.status.payload.data, f->u.status.payload.len, now);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    if (h->status_self(h->ud, &json, &len) == SN_OK) {
        sn_wire_frame s;
        sn_wire_frame_init(&s, SN_WIRE_STATUS);
        s.u.status.node = self;
        s.u.status.incarnation = inc;
        s.u.status.request = f->u.status.request;
        s.u.status.payload = (sn_wire_bytes){json, len};
        sn_peers_reply(l, m, id, idlen, &s);
    }
    free(json);
}
