/* sn_metrics: a thread-safe registry of counters, gauges and histograms, rendered on demand
 * in the Prometheus text format (0.0.4); and the standard set of stage_* metrics (docs/metrics.md).
 */
#ifndef SN_METRICS_H
#define SN_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_metrics sn_metrics; /* the registry */
typedef struct sn_metric sn_metric;   /* one metric family: a name, a type, up to 3 label names */
typedef struct sn_series sn_series;   /* one child of a family: its label values and its value */

typedef enum sn_metric_type {
    SN_METRIC_COUNTER = 0,
    SN_METRIC_GAUGE,
    SN_METRIC_HISTOGRAM
} sn_metric_type;

#define SN_METRICS_MAX_LABELS 3
/* Series per family unless sn_metrics_new says otherwise; beyond it, the overflow series. */
#define SN_METRICS_DEFAULT_MAX_SERIES 10000
/* Label values longer than this are cut (bytes). */
#define SN_METRICS_MAX_LABEL_VALUE 128
#define SN_METRICS_MAX_BUCKETS     32
/* The label value of the overflow series, for every label of the family. */
#define SN_METRICS_OVERFLOW_VALUE "_other"

typedef struct sn_metric_desc {
    sn_metric_type type;
    const char *name;                          /* [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help;                          /* one line; NULL renders as "" */
    const char *labels[SN_METRICS_MAX_LABELS]; /* label names in order; NULL-padded */
    const double *buckets; /* histograms: ascending finite upper bounds; +Inf is implied */
    size_t nbuckets;       /* 1..SN_METRICS_MAX_BUCKETS for histograms, else 0 */
} sn_metric_desc;

/* sn_metrics_new: an empty registry allowing max_series series per labelled family (0 means
 * SN_METRICS_DEFAULT_MAX_SERIES). It registers stage_metrics_dropped_series_total{metric},
 * which counts the lookups sent to an overflow series. NULL on ENOMEM. */
sn_metrics *sn_metrics_new(size_t max_series);
/* sn_metrics_destroy: frees the registry with every family and series (every handle dies);
 * NULL is fine. No other thread may use the registry or its handles any more. */
void sn_metrics_destroy(sn_metrics **regp);

/* sn_metrics_add: registers a family described by d; *out is valid until the registry is
 * destroyed. SN_EINVAL for a bad or duplicate name, bad label names, bad buckets; SN_ENOMEM.
 * Any thread. */
int sn_metrics_add(sn_metrics *reg, const sn_metric_desc *d, sn_metric **out);

/* sn_metric_child: the series of m for these label values (one per label name of m, NULL for
 * the others; a NULL value for a declared label means ""), created on first use. The pointer
 * is stable for the registry's life: keep it and update it without any lookup. Past the series
 * cap (or on ENOMEM) it returns the family's overflow series, whose label values are all
 * "_other", and counts the drop. Never NULL. Any thread; takes a read lock (a write lock to
 * create). */
sn_series *sn_metric_child(sn_metric *m, const char *v1, const char *v2);

/* sn_metric_childv: the same for n values (families with 3 labels: stage_node_info). */
sn_series *sn_metric_childv(sn_metric *m, const char *const *values, size_t n);

/* Updates: lock-free atomics, any thread. The series' type must fit (asserted). */
/* sn_series_inc / sn_series_add: a counter goes up by 1 / by n. */
void sn_series_inc(sn_series *s);
void sn_series_add(sn_series *s, uint64_t n);
/* sn_series_set_counter: a counter mirrors a total counted elsewhere (it must never go
 * down). */
void sn_series_set_counter(sn_series *s, uint64_t total);
/* sn_series_set / sn_series_gauge_add: a gauge is set to v / moved by delta (may be < 0). */
void sn_series_set(sn_series *s, double v);
void sn_series_gauge_add(sn_series *s, double delta);
/* sn_series_observe: a histogram records one value (seconds for stage_handler_seconds). */
void sn_series_observe(sn_series *s, double v);

/* sn_series_value: a counter's or gauge's current value; a histogram's count. Any thread. */
double sn_series_value(sn_series *s);

/* A collector fills a gauge family at scrape time: it calls sn_metrics_emit once per series.
 * It runs on the scraping thread (the HTTP thread) with the family's lock held: it must only
 * read thread-safe data, must not block, and must not call sn_metric_child on the same family. */
typedef struct sn_metrics_emitter sn_metrics_emitter;
typedef void (*sn_metrics_collect_fn)(void *ud, sn_metrics_emitter *e);
/* sn_metrics_emit: one series (label values as for sn_metric_child) with value v. Past the
 * series cap further calls are ignored and counted as dropped. Only inside a collector. */
void sn_metrics_emit(sn_metrics_emitter *e, const char *v1, const char *v2, double v);
/* sn_metric_set_collector: makes m (a gauge) call fn(ud) at every render, after its own
 * series; fn NULL removes it. Use a family either with children or with a collector, not both
 * for the same label values. ud must outlive the registry or the next call. Any thread. */
void sn_metric_set_collector(sn_metric *m, sn_metrics_collect_fn fn, void *ud);

/* sn_metrics_render: the whole registry in Prometheus text format (# HELP, # TYPE, samples),
 * into a NUL-terminated malloc'd buffer: caller owns *out (free()), *len excludes the NUL.
 * SN_ELIMIT when the text would exceed max_bytes (nothing returned), SN_ENOMEM. Any thread. */
int sn_metrics_render(sn_metrics *reg, size_t max_bytes, char **out, size_t *len);

/* The standard families of docs/metrics.md. Labelled families are sn_metric handles (take a
 * child per stage once and keep it); unlabelled ones are series, ready to update. */
typedef struct sn_metrics_std {
    sn_metric *messages_in;       /* stage_messages_in_total{stage} counter */
    sn_metric *messages_out;      /* stage_messages_out_total{stage} counter */
    sn_metric *messages_dropped;  /* stage_messages_dropped_total{stage,reason} counter */
    sn_metric *mailbox_depth;     /* stage_mailbox_depth{stage} gauge */
    sn_metric *handler_seconds;   /* stage_handler_seconds{stage} histogram */
    sn_metric *errors;            /* stage_errors_total{stage,kind} counter */
    sn_metric *kills;             /* stage_kills_total{stage,reason} counter */
    sn_metric *actors;            /* stage_actors{stage} gauge */
    sn_series *workers;           /* stage_workers gauge */
    sn_series *jobs;              /* stage_jobs_total counter */
    sn_series *jobs_running;      /* stage_jobs_running gauge */
    sn_metric *peers;             /* stage_peers{state} gauge */
    sn_series *wire_bytes_in;     /* stage_wire_bytes_total{direction="in"} counter */
    sn_series *wire_bytes_out;    /* stage_wire_bytes_total{direction="out"} counter */
    sn_series *wire_messages_in;  /* stage_wire_messages_total{direction="in"} counter */
    sn_series *wire_messages_out; /* stage_wire_messages_total{direction="out"} counter */
    sn_metric *lua_memory;        /* stage_lua_memory_bytes{stage} gauge */
    sn_series *cache_hits;        /* stage_function_cache_total{result="hit"} counter */
    sn_series *cache_misses;      /* stage_function_cache_total{result="miss"} counter */
    sn_series *node_info;         /* stage_node_info{node,cluster,version} gauge, set to 1 */
    sn_series *uptime;            /* stage_uptime_seconds gauge, computed at render */
} sn_metrics_std;

/* The buckets of stage_handler_seconds, in seconds. */
extern const double sn_metrics_handler_buckets[10];

/* sn_metrics_std_register: registers the standard families in reg and fills *std; node,
 * cluster and version label stage_node_info; uptime counts from this call (monotonic clock).
 * The stage_peers series for alive|suspect|down|left exist at 0 from the start.
 * SN_EINVAL when already registered, SN_ENOMEM. */
int sn_metrics_std_register(sn_metrics *reg, sn_metrics_std *std, const char *node,
                            const char *cluster, const char *version);

#endif
