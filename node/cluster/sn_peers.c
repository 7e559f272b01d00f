/* sn_peers: a control connection is marked used by every send; the tick stamps the marked
 * ones with its time and closes those whose stamp is idle seconds old. */
#include "sn_peers.h"
#include "sn_error.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

int sn_peers_is_data(sn_wire_kind kind)
{
    return kind == SN_WIRE_MESSAGE || kind == SN_WIRE_REPLY ||
           (kind >= SN_WIRE_LOCK_ACQUIRE && kind <= SN_WIRE_LOCK_DENY);
}

sn_conn *sn_peers_conn(sn_link *l, sn_member *m, int data)
{
    sn_conn **cp = data ? &m->data : &m->ctl;
    if (!*cp) {
        if (sn_transport_connect(sn_link_transport(l), m->endpoint, m->name, cp) != SN_OK)
            return NULL; /* logged by the transport */
        sn_log_write(sn_link_log(l), SN_LOG_DEBUG, "cluster", "opened the %s link to %s",
                     data ? "data" : "control", m->name);
    }
    if (!data)
        m->ctl_used = 1;
    return *cp;
}

int sn_peers_send(sn_link *l, sn_member *m, const sn_wire_frame *f)
{
    return sn_link_send(l, sn_peers_conn(l, m, sn_peers_is_data(f->kind)), f);
}

int sn_peers_reply(sn_link *l, sn_member *m, const void *id, size_t idlen,
                   const sn_wire_frame *f)
{
    int rc = sn_link_encode(l, f); /* once: a frame that cannot be encoded opens no link */
    if (rc != SN_OK)
        return rc;
    if (id && sn_link_answer_encoded(l, id, idlen) == SN_OK)
        return SN_OK;
    return sn_link_send_encoded(l, sn_peers_conn(l, m, sn_peers_is_data(f->kind)));
}

void sn_peers_close(sn_link *l, sn_member *m)
{
    sn_transport_close(sn_link_transport(l), &m->data);
    sn_transport_close(sn_link_transport(l), &m->ctl);
}

void sn_peers_idle(sn_link *l, sn_members *ms, double now, double idle, double *trimmed_at)
{
    if (idle <= 0)
        return;
    size_t closed = 0;
    for (sn_member *m = sn_members_first(ms); m; m = m->next) {
        if (!m->ctl)
            continue;
        if (m->ctl_used) { /* used (or made: sn_peers_conn marks it) since the last pass */
            m->ctl_used = 0;
            m->ctl_at = now;
        }
        if (now - m->ctl_at < idle)
            continue;
        sn_log_write(sn_link_log(l), SN_LOG_DEBUG, "cluster", "closed the control link to %s: "
                     "nothing sent on it for %.1f s (--set link_idle)", m->name, now - m->ctl_at);
        sn_transport_close_gently(sn_link_transport(l), &m->ctl);
        closed++;
    }
    if (closed && now - *trimmed_at >= SN_PEERS_TRIM_EVERY) {
        *trimmed_at = now;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
}
