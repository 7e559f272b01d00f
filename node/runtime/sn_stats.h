/* sn_stats: the node's counting: totals for the status view, the Prometheus series of the
 * metrics registry, and the last errors logged. Every function may be called from any
 * thread. */
#ifndef SN_STATS_H
#define SN_STATS_H

#include "sn_metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sn_stats sn_stats;

typedef enum sn_stats_event {
    SN_COUNT_IN,      /* a message handled; label: none */
    SN_COUNT_OUT,     /* a message sent */
    SN_COUNT_DROP,    /* a message dropped; label: the reason */
    SN_COUNT_ERROR,   /* an error; label: chunk|handler|timer|job|thread */
    SN_COUNT_KILL,    /* a budget or memory kill; label: budget|memory */
    SN_COUNT_RESTART, /* an actor restarted */
    SN_COUNT_FAIL     /* an actor failed for good */
} sn_stats_event;

enum { SN_STATS_MAX_ERRORS = 20 }; /* the last errors kept for the status view */

typedef struct sn_stats_error {
    double time; /* realtime seconds */
    char who[64];
    char text[256]; /* the first line of the message */
} sn_stats_error;

typedef struct sn_stats_counters {
    uint64_t in, out, dropped, errors, jobs, restarts, failures;
    long jobs_live; /* submitted and not finished (queued, running, waiting a re-run) */
} sn_stats_counters;

/* sn_stats_new: counters and a metrics registry labelled with node, cluster and version.
 * NULL on out of memory. */
sn_stats *sn_stats_new(const char *node, const char *cluster, const char *version);
/* sn_stats_destroy: NULL is fine; nulls *sp. */
void sn_stats_destroy(sn_stats **sp);

/* sn_stats_count: one event of stage (label as the event says, or NULL). */
void sn_stats_count(sn_stats *s, sn_stats_event what, const char *stage, const char *label);
/* sn_stats_observe: a handler of stage took seconds. */
void sn_stats_observe(sn_stats *s, const char *stage, double seconds);
/* sn_stats_stage: one stage's message series, resolved once (sn_stats_stage_init) and kept
 * by whoever counts for that stage (its actors), so that counting a message looks up no
 * labels. */
typedef struct sn_stats_stage {
    sn_series *in, *out, *handler;
} sn_stats_stage;
/* sn_stats_stage_init: resolves stage's series into *ss (a series past the registry's cap
 * is its family's overflow series, as sn_metric_child gives). */
void sn_stats_stage_init(sn_stats *s, const char *stage, sn_stats_stage *ss);
/* sn_stats_handled: SN_COUNT_IN and sn_stats_observe of seconds, for ss's stage. */
void sn_stats_handled(sn_stats *s, const sn_stats_stage *ss, double seconds);
/* sn_stats_sent: SN_COUNT_OUT for ss's stage. */
void sn_stats_sent(sn_stats *s, const sn_stats_stage *ss);
/* sn_stats_job: a job was submitted (delta 1: counted) or ended for good (delta -1). */
void sn_stats_job(sn_stats *s, int delta);
/* sn_stats_log_error: an error record (who, text), as a log tap (ud: the stats). */
void sn_stats_log_error(void *ud, const char *who, const char *text);

/* sn_stats_counters_get: the totals. sn_stats_errors: the last errors, newest first, into v
 * (room for SN_STATS_MAX_ERRORS); returns how many. */
void sn_stats_counters_get(sn_stats *s, sn_stats_counters *c);
size_t sn_stats_errors(sn_stats *s, sn_stats_error *v);
/* sn_stats_metrics / sn_stats_std: the registry and its standard series. */
sn_metrics *sn_stats_metrics(sn_stats *s);
const sn_metrics_std *sn_stats_std(sn_stats *s);

#endif
