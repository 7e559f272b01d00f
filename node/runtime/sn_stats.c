/* sn_stats: totals are atomics; the series come from the metrics registry (thread-safe);
 * the last errors are a ring under a mutex. */
#include "sn_stats.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sn_stats {
    sn_metrics *metrics;
    sn_metrics_std m;
    _Atomic uint64_t in, out, dropped, errors, jobs, restarts, failures;
    atomic_long jobs_live;
    pthread_mutex_t errors_lock;
    sn_stats_error ring[SN_STATS_MAX_ERRORS];
    int nerrors, at;
};

sn_stats *sn_stats_new(const char *node, const char *cluster, const char *version)
{
    sn_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->metrics = sn_metrics_new(0);
    if (!s->metrics ||
        sn_metrics_std_register(s->metrics, &s->m, node, cluster, version) != SN_OK) {
        sn_metrics_destroy(&s->metrics);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->errors_lock, NULL);
    return s;
}

void sn_stats_destroy(sn_stats **sp)
{
    if (!sp || !*sp)
        return;
    sn_metrics_destroy(&(*sp)->metrics);
    pthread_mutex_destroy(&(*sp)->errors_lock);
    free(*sp);
    *sp = NULL;
}

void sn_stats_count(sn_stats *s, sn_stats_event what, const char *stage, const char *label)
{
    switch (what) {
    case SN_COUNT_IN:
        atomic_fetch_add(&s->in, 1);
        sn_series_inc(sn_metric_child(s->m.messages_in, stage, NULL));
        break;
    case SN_COUNT_OUT:
        atomic_fetch_add(&s->out, 1);
        sn_series_inc(sn_metric_child(s->m.messages_out, stage, NULL));
        break;
    case SN_COUNT_DROP:
        atomic_fetch_add(&s->dropped, 1);
        sn_series_inc(sn_metric_child(s->m.messages_dropped, stage, label));
        break;
    case SN_COUNT_ERROR:
        sn_series_inc(sn_metric_child(s->m.errors, stage, label));
        break;
    case SN_COUNT_KILL:
        sn_series_inc(sn_metric_child(s->m.kills, stage, label));
        break;
    case SN_COUNT_RESTART:
        atomic_fetch_add(&s->restarts, 1);
        break;
    case SN_COUNT_FAIL:
        atomic_fetch_add(&s->failures, 1);
        break;
    }
}

void sn_stats_observe(sn_stats *s, const char *stage, double seconds)
{
    sn_series_observe(sn_metric_child(s->m.handler_seconds, stage, NULL), seconds);
}

void sn_stats_stage_init(sn_stats *s, const char *stage, sn_stats_stage *ss)
{
    ss->in = sn_metric_child(s->m.messages_in, stage, NULL);
    ss->out = sn_metric_child(s->m.messages_out, stage, NULL);
    ss->handler = sn_metric_child(s->m.handler_seconds, stage, NULL);
}

void sn_stats_handled(sn_stats *s, const sn_stats_stage *ss, double seconds)
{
    atomic_fetch_add_explicit(&s->in, 1, memory_order_relaxed);
    sn_series_inc(ss->in);
    sn_series_observe(ss->handler, seconds);
}

void sn_stats_sent(sn_stats *s, const sn_stats_stage *ss)
{
    atomic_fetch_add_explicit(&s->out, 1, memory_order_relaxed);
    sn_series_inc(ss->out);
}

void sn_stats_job(sn_stats *s, int delta)
{
    if (delta > 0) {
        atomic_fetch_add(&s->jobs, 1);
        sn_series_inc(s->m.jobs);
    }
    atomic_fetch_add(&s->jobs_live, delta);
}

void sn_stats_log_error(void *ud, const char *who, const char *text)
{
    sn_stats *s = ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&s->errors_lock);
    sn_stats_error *e = &s->ring[s->at];
    s->at = (s->at + 1) % SN_STATS_MAX_ERRORS;
    if (s->nerrors < SN_STATS_MAX_ERRORS)
        s->nerrors++;
    e->time = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    snprintf(e->who, sizeof e->who, "%s", who);
    size_t len = strcspn(text, "\n"); /* the first line: the message */
    snprintf(e->text, sizeof e->text, "%.*s", (int)len, text);
    pthread_mutex_unlock(&s->errors_lock);
    atomic_fetch_add(&s->errors, 1);
}

void sn_stats_counters_get(sn_stats *s, sn_stats_counters *c)
{
    *c = (sn_stats_counters){
        .in = atomic_load(&s->in),
        .out = atomic_load(&s->out),
        .dropped = atomic_load(&s->dropped),
        .errors = atomic_load(&s->errors),
        .jobs = atomic_load(&s->jobs),
        .restarts = atomic_load(&s->restarts),
        .failures = atomic_load(&s->failures),
        .jobs_live = atomic_load(&s->jobs_live),
    };
}

size_t sn_stats_errors(sn_stats *s, sn_stats_error *v)
{
    pthread_mutex_lock(&s->errors_lock);
    for (int i = 0; i < s->nerrors; i++) { /* newest first */
        int k = (s->at - 1 - i + 2 * SN_STATS_MAX_ERRORS) % SN_STATS_MAX_ERRORS;
        v[i] = s->ring[k];
    }
    size_t count = (size_t)s->nerrors;
    pthread_mutex_unlock(&s->errors_lock);
    return count;
}

sn_metrics *sn_stats_metrics(sn_stats *s)
{
    return s->metrics;
}

const sn_metrics_std *sn_stats_std(sn_stats *s)
{
    return &s->m;
}
