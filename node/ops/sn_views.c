/* sn_views: rendered on the HTTP thread (and the loop thread, for peers); everything is read
 * through getters that may be called from any thread. */
#include "sn_views.h"
#include "sn_broker.h"
#include "sn_cluster.h"
#include "sn_error.h"
#include "sn_fcache.h"
#include "sn_gate.h"
#include "sn_log.h"
#include "sn_metrics.h"
#include "sn_status.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct sn_views {
    sn_node *node;
    struct sn_cluster *cluster;
    struct sn_fcache *fcache;
    sn_series *seq_gaps, *seq_dups; /* stage_wire_seq_{gaps,dups}_total */
    sn_metric *refused;             /* stage_wire_refused_total{reason} (sn_gate) */
    struct sn_broker *broker;       /* NULL: none */
    sn_metric *b_open, *b_accepted, *b_closed, *b_bytes_in, *b_bytes_out, *b_frames_in,
        *b_frames_out, *b_queued, *b_paused; /* stage_broker_*{listener} */
};

void sn_views_set_broker(sn_views *v, struct sn_broker *b)
{
    static const struct {
        sn_metric_type type;
        const char *name, *help;
        size_t field;
    } fams[] = {
        {SN_METRIC_GAUGE, "stage_broker_open", "Connections open, per listener",
         offsetof(sn_views, b_open)},
        {SN_METRIC_COUNTER, "stage_broker_accepted_total", "Connections accepted",
         offsetof(sn_views, b_accepted)},
        {SN_METRIC_COUNTER, "stage_broker_bytes_in_total", "Bytes read from clients",
         offsetof(sn_views, b_bytes_in)},
        {SN_METRIC_COUNTER, "stage_broker_bytes_out_total", "Bytes written to clients",
         offsetof(sn_views, b_bytes_out)},
        {SN_METRIC_COUNTER, "stage_broker_frames_in_total",
         "Frames, messages, datagrams or reads handed to actors", offsetof(sn_views, b_frames_in)},
        {SN_METRIC_COUNTER, "stage_broker_frames_out_total", "Commits sent to clients",
         offsetof(sn_views, b_frames_out)},
        {SN_METRIC_GAUGE, "stage_broker_queued_out_bytes", "Bytes waiting for slow clients",
         offsetof(sn_views, b_queued)},
        {SN_METRIC_COUNTER, "stage_broker_paused_total",
         "Times reading stopped because the owner's mailbox was full",
         offsetof(sn_views, b_paused)},
    };
    v->broker = b;
    sn_metrics *reg = sn_stats_metrics(sn_node_stats(v->node));
    for (size_t i = 0; i < sizeof fams / sizeof *fams; i++) {
        sn_metric_desc d = {.type = fams[i].type, .name = fams[i].name, .help = fams[i].help,
                            .labels = {"listener"}};
        sn_metric **slot = (sn_metric **)((char *)v + fams[i].field);
        if (sn_metrics_add(reg, &d, slot) != SN_OK)
            *slot = NULL;
    }
    sn_metric_desc cd = {.type = SN_METRIC_COUNTER, .name = "stage_broker_closed_total",
                         .help = "Connections closed, by reason", .labels = {"listener",
                                                                             "reason"}};
    if (sn_metrics_add(reg, &cd, &v->b_closed) != SN_OK)
        v->b_closed = NULL;
}

static void broker_metrics(sn_views *vw)
{
    sn_broker_stats *st;
    size_t n = sn_broker_stats_get(vw->broker, &st);
    for (size_t i = 0; i < n; i++) {
        const char *l = st[i].uri;
        if (vw->b_open)
            sn_series_set(sn_metric_child(vw->b_open, l, NULL), (double)st[i].open);
        if (vw->b_queued)
            sn_series_set(sn_metric_child(vw->b_queued, l, NULL), (double)st[i].queued_out);
        struct { sn_metric *m; uint64_t v; } c[] = {
            {vw->b_accepted, st[i].accepted}, {vw->b_bytes_in, st[i].bytes_in},
            {vw->b_bytes_out, st[i].bytes_out}, {vw->b_frames_in, st[i].frames_in},
            {vw->b_frames_out, st[i].frames_out}, {vw->b_paused, st[i].paused}};
        for (size_t k = 0; k < sizeof c / sizeof *c; k++)
            if (c[k].m)
                sn_series_set_counter(sn_metric_child(c[k].m, l, NULL), c[k].v);
        for (int r = 0; vw->b_closed && r < SN_BCLOSE_N; r++)
            sn_series_set_counter(sn_metric_child(vw->b_closed, l, sn_broker_reason_name(r)),
                                  st[i].closed[r]);
    }
    free(st);
}

sn_views *sn_views_new(sn_node *n, struct sn_cluster *c, struct sn_fcache *fc)
{
    sn_views *v = calloc(1, sizeof *v);
    if (!v) {
        sn_log_write(sn_node_log(n), SN_LOG_ERROR, NULL, "cannot create the views: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    v->node = n;
    v->cluster = c;
    v->fcache = fc;
    sn_metric *gaps, *dups;
    sn_metric_desc gd = {.type = SN_METRIC_COUNTER, .name = "stage_wire_seq_gaps_total",
                         .help = "Messages from peers that never arrived (per-pair sequence gaps)"};
    sn_metric_desc dd = {.type = SN_METRIC_COUNTER, .name = "stage_wire_seq_dups_total",
                         .help = "Messages from peers seen twice and dropped (must stay 0)"};
    sn_metrics *reg = sn_stats_metrics(sn_node_stats(n));
    if (sn_metrics_add(reg, &gd, &gaps) == SN_OK)
        v->seq_gaps = sn_metric_child(gaps, NULL, NULL);
    if (sn_metrics_add(reg, &dd, &dups) == SN_OK)
        v->seq_dups = sn_metric_child(dups, NULL, NULL);
    sn_metric_desc rd = {.type = SN_METRIC_COUNTER, .name = "stage_wire_refused_total",
                         .help = "Frames from peers refused, by reason (identity: claimed "
                                 "another node than the connection is authenticated as)",
                         .labels = {"reason"}};
    if (sn_metrics_add(reg, &rd, &v->refused) != SN_OK)
        v->refused = NULL;
    return v;
}

void sn_views_destroy(sn_views **vp)
{
    if (!vp || !*vp)
        return;
    free(*vp);
    *vp = NULL;
}

int sn_views_metrics(void *ud, char **body, size_t *len)
{
    sn_views *vw = ud;
    sn_node *n = vw->node;
    const sn_metrics_std *m = sn_stats_std(sn_node_stats(n));
    sn_node_stage_sum *s;
    size_t ns = sn_node_stage_sums(n, &s);
    for (size_t i = 0; i < ns; i++) { /* gauges of this moment */
        sn_series_set(sn_metric_child(m->actors, s[i].stage, NULL), (double)s[i].actors);
        sn_series_set(sn_metric_child(m->mailbox_depth, s[i].stage, NULL), (double)s[i].depth);
        sn_series_set(sn_metric_child(m->lua_memory, s[i].stage, NULL), (double)s[i].memory);
    }
    free(s);
    sn_stats_counters c;
    sn_stats_counters_get(sn_node_stats(n), &c);
    sn_series_set(m->workers, sn_node_workers(n));
    sn_series_set(m->jobs_running, (double)c.jobs_live);
    if (vw->cluster) {
        size_t counts[4];
        sn_cluster_peer_counts(vw->cluster, counts);
        static const char *const states[4] = {"alive", "suspect", "down", "left"};
        for (int i = 0; i < 4; i++)
            sn_series_set(sn_metric_child(m->peers, states[i], NULL), (double)counts[i]);
        sn_cluster_stats st;
        sn_cluster_stats_get(vw->cluster, &st);
        sn_series_set_counter(m->wire_bytes_in, st.bytes_in);
        sn_series_set_counter(m->wire_bytes_out, st.bytes_out);
        sn_series_set_counter(m->wire_messages_in, st.frames_in);
        sn_series_set_counter(m->wire_messages_out, st.frames_out);
        sn_series_set_counter(vw->seq_gaps, st.seq_gaps);
        sn_series_set_counter(vw->seq_dups, st.seq_dups);
        for (int i = 0; vw->refused && i < SN_GATE_REASONS; i++)
            sn_series_set_counter(sn_metric_child(vw->refused,
                                                  sn_gate_reason_name((sn_gate_reason)i), NULL),
                                  st.refused_by[i]);
    }
    if (vw->broker)
        broker_metrics(vw);
    uint64_t hits = 0, misses = 0;
    if (vw->fcache)
        sn_fcache_counts(vw->fcache, &hits, &misses);
    sn_series_set_counter(m->cache_hits, hits);
    sn_series_set_counter(m->cache_misses, misses);
    return sn_metrics_render(sn_stats_metrics(sn_node_stats(n)), 16u << 20, body, len);
}

/* One node's own view; the arrays and strings are held here until free_view. */
typedef struct view {
    sn_status_view v;
    sn_node_stage_sum *sums;
    sn_status_stage *stages;
    sn_status_mailbox *boxes;
    sn_stats_error raw[SN_STATS_MAX_ERRORS];
    sn_status_error errors[SN_STATS_MAX_ERRORS];
    sn_broker_stats *brokers;
} view;

static void fill_view(sn_views *vw, view *w)
{
    sn_node *n = vw->node;
    const sn_opts *o = sn_node_opts(n);
    sn_status_view *v = &w->v;
    memset(v, 0, sizeof *v);
    v->name = sn_node_name(n);
    v->cluster = vw->cluster ? sn_cluster_cluster(vw->cluster) : (o->cluster ? o->cluster
                                                                            : "stage");
    v->version = SN_VERSION;
    v->incarnation = vw->cluster ? sn_cluster_incarnation(vw->cluster) : 0;
    v->uptime_s = sn_node_uptime(n);
    v->listen = vw->cluster ? sn_cluster_endpoint(vw->cluster) : "";
    v->http = o->http ? o->http : "";
    size_t ns = sn_node_stage_sums(n, &w->sums);
    w->stages = calloc(ns ? ns : 1, sizeof *w->stages);
    w->boxes = calloc(ns ? ns : 1, sizeof *w->boxes);
    uint64_t depth = 0, memory = 0, actors = 0;
    for (size_t i = 0; w->stages && w->boxes && i < ns; i++) {
        w->stages[i] = (sn_status_stage){w->sums[i].stage, w->sums[i].actors};
        w->boxes[i] = (sn_status_mailbox){w->sums[i].stage, w->sums[i].depth};
        depth += w->sums[i].depth;
        memory += w->sums[i].memory;
        actors += w->sums[i].actors;
    }
    v->stages = w->stages;
    v->nstages = w->stages && w->boxes ? ns : 0;
    v->mailboxes = w->boxes;
    v->nmailboxes = v->nstages;
    v->nerrors = sn_stats_errors(sn_node_stats(n), w->raw);
    for (size_t i = 0; i < v->nerrors; i++)
        w->errors[i] = (sn_status_error){w->raw[i].time, w->raw[i].who, w->raw[i].text};
    v->errors = w->errors;
    sn_cluster_stats st = {0};
    if (vw->cluster)
        sn_cluster_stats_get(vw->cluster, &st);
    sn_stats_counters c;
    sn_stats_counters_get(sn_node_stats(n), &c);
    v->counters = (sn_status_counters){
        .messages_in = c.in,
        .messages_out = c.out,
        .messages_dropped = c.dropped,
        .errors = c.errors,
        .jobs = c.jobs,
        .actors = actors,
        .workers = (uint64_t)sn_node_workers(n),
        .mailbox_depth = depth,
        .lua_memory_bytes = memory,
        .wire_bytes_in = st.bytes_in,
        .wire_bytes_out = st.bytes_out,
        .function_cache_hits = 0,
    };
    uint64_t misses;
    if (vw->fcache)
        sn_fcache_counts(vw->fcache, &v->counters.function_cache_hits, &misses);
    if (vw->broker) {
        v->nbrokers = sn_broker_stats_get(vw->broker, &w->brokers);
        v->brokers = w->brokers;
    }
}

static void free_view(view *w)
{
    free(w->stages);
    free(w->boxes);
    free(w->sums);
    free(w->brokers);
}

int sn_views_status_self(void *ud, char **json, size_t *len)
{
    view *w = calloc(1, sizeof *w);
    if (!w)
        return SN_ENOMEM;
    fill_view(ud, w);
    int rc = sn_status_render_self(&w->v, json, len);
    free_view(w);
    free(w);
    return rc;
}

int sn_views_status(void *ud, char **body, size_t *len)
{
    sn_views *vw = ud;
    view *w = calloc(1, sizeof *w);
    if (!w)
        return SN_ENOMEM;
    fill_view(vw, w);
    sn_member_view *mv = NULL; /* the cluster's own view, converted to the status view's */
    size_t nv = vw->cluster ? sn_cluster_members(vw->cluster, &mv) : 0, np = nv;
    sn_status_member *members = calloc(np ? np : 1, sizeof *members);
    sn_status_peer *peers = calloc(np ? np : 1, sizeof *peers);
    if (!members || !peers)
        np = 0;
    for (size_t i = 0; i < np; i++) {
        members[i] = (sn_status_member){mv[i].name, mv[i].endpoint, mv[i].http, mv[i].state,
                                        mv[i].incarnation, mv[i].last_seen_s};
        peers[i] = (sn_status_peer){mv[i].name, mv[i].status_json, mv[i].status_len,
                                    mv[i].status_age_s, mv[i].error};
    }
    w->v.members = members;
    w->v.nmembers = np;
    int rc = sn_status_render_cluster(&w->v, peers, np, body, len);
    free(members);
    free(peers);
    if (vw->cluster)
        sn_cluster_members_free(mv, nv);
    free_view(w);
    free(w);
    return rc;
}
