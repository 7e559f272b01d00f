/* sn_stats: totals, the series they feed, and the ring of the last errors. */
#include "sn_stats.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(sn_stats, counts_events_and_jobs)
{
    sn_stats *s = sn_stats_new("n1", "c", "v");
    cr_assert_not_null(s);
    sn_stats_count(s, SN_COUNT_IN, "a", NULL);
    sn_stats_count(s, SN_COUNT_OUT, "a", NULL);
    sn_stats_count(s, SN_COUNT_OUT, "b", NULL);
    sn_stats_count(s, SN_COUNT_DROP, "a", "no_route");
    sn_stats_count(s, SN_COUNT_RESTART, "a", NULL);
    sn_stats_count(s, SN_COUNT_FAIL, "a", NULL);
    sn_stats_count(s, SN_COUNT_KILL, "a", "budget");
    sn_stats_job(s, 1);
    sn_stats_job(s, 1);
    sn_stats_job(s, -1);
    sn_stats_counters c;
    sn_stats_counters_get(s, &c);
    cr_assert_eq(c.in, 1);
    cr_assert_eq(c.out, 2);
    cr_assert_eq(c.dropped, 1);
    cr_assert_eq(c.restarts, 1);
    cr_assert_eq(c.failures, 1);
    cr_assert_eq(c.jobs, 2);
    cr_assert_eq(c.jobs_live, 1);
    char *body;
    size_t len;
    cr_assert_eq(sn_metrics_render(sn_stats_metrics(s), 1u << 20, &body, &len), 0);
    cr_assert_not_null(strstr(body, "stage_messages_dropped_total{"), "%s", body);
    cr_assert_not_null(strstr(body, "no_route"));
    free(body);
    sn_stats_destroy(&s);
    cr_assert_null(s);
}

Test(sn_stats, keeps_the_last_errors_newest_first)
{
    sn_stats *s = sn_stats_new("n1", "c", "v");
    char text[64];
    for (int i = 0; i < SN_STATS_MAX_ERRORS + 5; i++) {
        snprintf(text, sizeof text, "error %d\ntraceback", i);
        sn_stats_log_error(s, "who", text);
    }
    sn_stats_error v[SN_STATS_MAX_ERRORS];
    cr_assert_eq(sn_stats_errors(s, v), SN_STATS_MAX_ERRORS);
    snprintf(text, sizeof text, "error %d", SN_STATS_MAX_ERRORS + 4);
    cr_assert_str_eq(v[0].text, text, "the first line only, newest first");
    cr_assert_str_eq(v[SN_STATS_MAX_ERRORS - 1].text, "error 5");
    cr_assert_str_eq(v[0].who, "who");
    sn_stats_counters c;
    sn_stats_counters_get(s, &c);
    cr_assert_eq(c.errors, SN_STATS_MAX_ERRORS + 5);
    sn_stats_destroy(&s);
}

/* A stage's series resolved once count into the same series as sn_stats_count by name. */
Test(sn_stats, resolved_stage_series_count_as_by_name)
{
    sn_stats *s = sn_stats_new("n1", "c", "v");
    cr_assert_not_null(s);
    sn_stats_stage ss;
    sn_stats_stage_init(s, "a", &ss);
    sn_stats_handled(s, &ss, 0.001);
    sn_stats_sent(s, &ss);
    sn_stats_count(s, SN_COUNT_IN, "a", NULL);
    sn_stats_count(s, SN_COUNT_OUT, "a", NULL);
    sn_stats_counters c;
    sn_stats_counters_get(s, &c);
    cr_assert_eq(c.in, 2);
    cr_assert_eq(c.out, 2);
    const sn_metrics_std *m = sn_stats_std(s);
    cr_assert_eq(sn_series_value(sn_metric_child(m->messages_in, "a", NULL)), 2.0);
    cr_assert_eq(sn_series_value(sn_metric_child(m->messages_out, "a", NULL)), 2.0);
    cr_assert_eq(sn_series_value(sn_metric_child(m->handler_seconds, "a", NULL)), 1.0);
    cr_assert_eq(ss.in, sn_metric_child(m->messages_in, "a", NULL));
    sn_stats_destroy(&s);
}
