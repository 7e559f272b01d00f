/* sn_gate: claimed source against authenticated source; refusals counted and rate-limited. */
#include "sn_gate.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_gate {
    sn_log *log;
    sn_log_rate rate; /* the lines of refusals (and sn_gate_log's) */
    _Atomic uint64_t count[SN_GATE_REASONS];
};

sn_gate *sn_gate_new(sn_log *log)
{
    sn_gate *g = calloc(1, sizeof *g);
    if (g) {
        g->log = log;
        g->rate = (sn_log_rate){.per_second = SN_GATE_LOGS_PER_SECOND, .what = "refused frames"};
    }
    return g;
}

void sn_gate_destroy(sn_gate **gp)
{
    if (!gp || !*gp) return;
    sn_log_rate_flush((*gp)->log, &(*gp)->rate, SN_LOG_WARN, "cluster");
    free(*gp);
    *gp = NULL;
}

const char *sn_gate_claimed(const sn_wire_frame *f)
{
    switch (f->kind) {
    case SN_WIRE_HELLO:
    case SN_WIRE_WELCOME:
        return f->u.hello.node;
    case SN_WIRE_HEARTBEAT:
        return f->u.heartbeat.node;
    case SN_WIRE_GOSSIP:
        return f->u.gossip.node;
    case SN_WIRE_REGISTRY:
        return f->u.registry.node;
    case SN_WIRE_MESSAGE:
        return f->u.message.src.node;
    case SN_WIRE_REPLY:
        return f->u.reply.src.node;
    case SN_WIRE_LEAVE:
        return f->u.leave.node;
    case SN_WIRE_STATUS_REQ:
    case SN_WIRE_STATUS:
        return f->u.status.node;
    case SN_WIRE_LOCK_ACQUIRE:
    case SN_WIRE_LOCK_EXTEND:
    case SN_WIRE_LOCK_RELEASE:
        return f->u.lock.addr.node; /* the requester or holder */
    default:
        return NULL;
    }
}

int sn_gate_check(sn_gate *g, const sn_wire_frame *f, const char *peer)
{
    const char *claimed = sn_gate_claimed(f);
    if (!peer || !claimed || strcmp(claimed, peer) == 0) return 1;
    sn_gate_refused(g, SN_GATE_IDENTITY, "refused a %s from %s that claims to come from '%s'",
                     sn_wire_kind_name(f->kind), peer, claimed);
    return 0;
}

int sn_gate_batched(sn_gate *g, const sn_wire_frame *f, const char *peer)
{
    if (f->kind == SN_WIRE_MESSAGE || f->kind == SN_WIRE_REPLY ||
        (f->kind >= SN_WIRE_LOCK_ACQUIRE && f->kind <= SN_WIRE_LOCK_DENY &&
         f->kind != SN_WIRE_CODE_MISS))
        return 1;
    sn_gate_refused(g, SN_GATE_MALFORMED, "dropped a %s inside a BATCH from %s",
                     sn_wire_kind_name(f->kind), peer ? peer : "an unauthenticated peer");
    return 0;
}

void sn_gate_refused(sn_gate *g, sn_gate_reason why, const char *fmt, ...)
{
    atomic_fetch_add(&g->count[why], 1);
    va_list ap;
    va_start(ap, fmt);
    sn_log_vrated(g->log, &g->rate, SN_LOG_WARN, "cluster", fmt, ap);
    va_end(ap);
}

void sn_gate_log(sn_gate *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sn_log_vrated(g->log, &g->rate, SN_LOG_WARN, "cluster", fmt, ap);
    va_end(ap);
}

int sn_gate_admit_member(sn_gate *g, sn_members *ms, sn_transport *t, const char *name,
                          size_t max, int hearsay)
{
    if (sn_members_find(ms, name)) return 1;
    size_t cap = hearsay ? max / 2 : max;
    if (sn_members_count(ms) >= cap) {
        sn_gate_refused(g, SN_GATE_MEMBERS,
                         "not adding member %s: this node keeps at most "
                         "%zu members%s (--set members=%zu)",
                         name, cap, hearsay ? " heard of in gossip" : "", max);
        return 0;
    }
    if (!sn_transport_admits(t, name)) {
        sn_gate_refused(g, SN_GATE_MEMBERS,
                         "not adding member %s: no key for that name in "
                         "--curve-allow",
                         name);
        return 0;
    }
    return 1;
}

void sn_gate_seed(const char *item, char *endpoint, size_t ecap, char *name, size_t ncap)
{
    const char *at = strchr(item, '@');
    const char *where = at ? at + 1 : item;
    const char *scheme = strstr(where, "://");
    snprintf(endpoint, ecap, scheme ? "%s" : "tcp://%s", where);
    const char *host = scheme ? scheme + 3 : where;
    size_t n = at ? (size_t)(at - item) : strcspn(host, ".:");
    snprintf(name, ncap, "%.*s", (int)n, at ? item : host);
}

uint64_t sn_gate_count(const sn_gate *g, sn_gate_reason why)
{
    return atomic_load(&((sn_gate *)g)->count[why]);
}

const char *sn_gate_reason_name(sn_gate_reason why)
{
    static const char *const names[SN_GATE_REASONS] = {"malformed", "identity", "duplicate",
                                                        "lock",      "members",  "hello"};
    return (unsigned)why < SN_GATE_REASONS ? names[why] : "?";
}
