/* sn_registry: the stages are gathered through the hooks into a growing array (no cap of
 * its own: the wire limits are the limit, and they are reported). */
#include "sn_registry.h"
#include "sn_peers.h"
#include "sn_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stages_acc {
    sn_wire_stage *v;
    size_t n, cap;
    int failed;
} stages_acc;

static void add_stage(const char *stage, size_t count, void *ud)
{
    stages_acc *a = ud;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        sn_wire_stage *v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->failed = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    char *name = strdup(stage);
    if (!name) {
        a->failed = 1;
        return;
    }
    a->v[a->n++] = (sn_wire_stage){name, (uint32_t)count};
}

int sn_registry_encode(const sn_cluster_hooks *h, const char *self, uint64_t inc,
                       uint64_t version, const sn_wire_limits *lim, sn_buf *out,
                       size_t *nstages, char *err, size_t errlen)
{
    stages_acc a = {0};
    h->each_stage(h->ud, add_stage, &a);
    *nstages = a.n;
    int rc = SN_ENOMEM;
    if (a.failed) {
        snprintf(err, errlen, "out of memory");
    } else {
        sn_wire_frame f;
        sn_wire_frame_init(&f, SN_WIRE_REGISTRY);
        f.u.registry.node = self;
        f.u.registry.incarnation = inc;
        f.u.registry.version = version;
        f.u.registry.stages = a.v;
        f.u.registry.nstages = (uint32_t)a.n;
        rc = sn_wire_encode(&f, lim, out, err, errlen);
    }
    for (size_t i = 0; i < a.n; i++)
        free((char *)a.v[i].stage);
    free(a.v);
    return rc;
}

void sn_registry_apply(const sn_cluster_hooks *h, sn_members *ms, const sn_wire_registry *r)
{
    sn_member *m = sn_members_find(ms, r->node);
    if (!m || m->inc != r->incarnation || m->state == SN_MEMBER_DOWN ||
        m->state == SN_MEMBER_LEFT || r->version <= m->registry_version)
        return;
    h->set_node(h->ud, m->name, r->stages, r->nstages);
    sn_member_stage *v = r->nstages ? calloc(r->nstages, sizeof *v) : NULL;
    for (uint32_t i = 0; i < r->nstages; i++) {
        if (v) {
            snprintf(v[i].stage, sizeof v[i].stage, "%s", r->stages[i].stage);
            v[i].count = r->stages[i].actors;
        }
    }
    sn_members_lock(ms);
    free(m->stages);
    m->stages = v;
    m->nstages = v ? r->nstages : 0;
    m->registry_version = r->version;
    sn_members_unlock(ms);
}

void sn_registry_announce(const sn_cluster_hooks *h, sn_link *link, sn_members *ms,
                          sn_log *log, const char *self, uint64_t inc, int changed,
                          uint64_t *version, int *too_big)
{
    char err[256];
    size_t n = 0;
    int probing = sn_members_probing(ms);
    if (changed || !probing)
        (*version)++;
    const sn_wire_limits *lim = sn_link_limits(link);
    sn_buf_reset(sn_link_buf(link));
    int rc = sn_registry_encode(h, self, inc, *version, lim, sn_link_buf(link), &n, err,
                                sizeof err);
    if (rc != SN_OK && !*too_big)
        sn_log_write(log, SN_LOG_ERROR, "cluster", "cannot announce this node's %zu stages: "
                     "%s (limits: %u stages, --set frame_max=%zu bytes)", n, err,
                     (unsigned)lim->max_stages, lim->max_frame);
    *too_big = rc != SN_OK;
    for (sn_member *m = sn_members_first(ms); rc == SN_OK && m; m = m->next) {
        if ((m->state == SN_MEMBER_ALIVE || m->state == SN_MEMBER_SUSPECT) &&
            (changed || !probing || m->target || m->registry_owed)) {
            sn_link_send_encoded(link, sn_peers_conn(link, m, 0));
            m->registry_owed = 0;
        }
    }
}
