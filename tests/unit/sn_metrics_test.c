/* sn_metrics: exact totals under threads, the Prometheus text, escaping, histograms, the cap. */
#include "sn_error.h"
#include "sn_metrics.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define ROUNDS  20000

static char *render(sn_metrics *reg)
{
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(sn_metrics_render(reg, 1u << 24, &text, &len), SN_OK);
    cr_assert_eq(strlen(text), len);
    return text;
}

static void assert_has(const char *text, const char *line)
{
    cr_assert_not_null(strstr(text, line), "missing \"%s\" in:\n%s", line, text);
}

static sn_metric *add(sn_metrics *reg, sn_metric_type type, const char *name, const char *l1,
                      const char *l2)
{
    static const double buckets[] = {0.1, 1, 10};
    sn_metric_desc d = {.type = type, .name = name, .help = "help", .labels = {l1, l2}};
    if (type == SN_METRIC_HISTOGRAM) {
        d.buckets = buckets;
        d.nbuckets = 3;
    }
    sn_metric *m = NULL;
    cr_assert_eq(sn_metrics_add(reg, &d, &m), SN_OK);
    return m;
}

typedef struct work {
    sn_metric *c, *g, *h;
    int id;
} work;

static void *hammer(void *arg)
{
    work *w = arg;
    const char *stages[] = {"a", "b"};
    for (int i = 0; i < ROUNDS; i++) {
        const char *st = stages[i % 2];
        /* the lookup path and the handle path both */
        sn_series_inc(sn_metric_child(w->c, st, NULL));
        sn_series_gauge_add(sn_metric_child(w->g, st, NULL), 1);
        sn_series_gauge_add(sn_metric_child(w->g, st, NULL), -0.5);
        sn_series_observe(sn_metric_child(w->h, st, NULL), (i % 4) * 0.5);
    }
    return NULL;
}

Test(sn_metrics, exact_totals_under_threads)
{
    sn_metrics *reg = sn_metrics_new(0);
    cr_assert_not_null(reg);
    work w = {.c = add(reg, SN_METRIC_COUNTER, "t_total", "stage", NULL),
              .g = add(reg, SN_METRIC_GAUGE, "t_gauge", "stage", NULL),
              .h = add(reg, SN_METRIC_HISTOGRAM, "t_seconds", "stage", NULL)};
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, hammer, &w);
    /* scraping while they work must be safe */
    for (int i = 0; i < 5; i++)
        free(render(reg));
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    double per_stage = THREADS * ROUNDS / 2.0;
    cr_assert_eq(sn_series_value(sn_metric_child(w.c, "a", NULL)), per_stage);
    cr_assert_eq(sn_series_value(sn_metric_child(w.c, "b", NULL)), per_stage);
    cr_assert_eq(sn_series_value(sn_metric_child(w.g, "a", NULL)), per_stage * 0.5);
    cr_assert_eq(sn_series_value(sn_metric_child(w.h, "b", NULL)), per_stage);

    char *text = render(reg);
    char line[128];
    snprintf(line, sizeof line, "t_total{stage=\"a\"} %.0f\n", per_stage);
    assert_has(text, line);
    snprintf(line, sizeof line, "t_gauge{stage=\"b\"} %.0f\n", per_stage * 0.5);
    assert_has(text, line);
    /* values 0, 0.5, 1, 1.5 in turn; stage a gets i even: 0 and 1 */
    snprintf(line, sizeof line, "t_seconds_bucket{stage=\"a\",le=\"0.1\"} %.0f\n", per_stage / 2);
    assert_has(text, line);
    snprintf(line, sizeof line, "t_seconds_bucket{stage=\"a\",le=\"1\"} %.0f\n", per_stage);
    assert_has(text, line);
    snprintf(line, sizeof line, "t_seconds_bucket{stage=\"a\",le=\"+Inf\"} %.0f\n", per_stage);
    assert_has(text, line);
    snprintf(line, sizeof line, "t_seconds_sum{stage=\"a\"} %.0f\n", per_stage / 2);
    assert_has(text, line);
    snprintf(line, sizeof line, "t_seconds_count{stage=\"b\"} %.0f\n", per_stage);
    assert_has(text, line);
    free(text);
    sn_metrics_destroy(&reg);
    cr_assert_null(reg);
    sn_metrics_destroy(&reg);
}

Test(sn_metrics, text_format_and_escaping)
{
    sn_metrics *reg = sn_metrics_new(0);
    sn_metric_desc d = {.type = SN_METRIC_COUNTER,
                        .name = "esc_total",
                        .help = "a \\ backslash\nand a newline",
                        .labels = {"stage", "kind"}};
    sn_metric *m;
    cr_assert_eq(sn_metrics_add(reg, &d, &m), SN_OK);
    sn_series_add(sn_metric_child(m, "q\"uote", "back\\slash\nnl"), 3);
    sn_metric *g = add(reg, SN_METRIC_GAUGE, "plain_gauge", NULL, NULL);
    sn_series_set(sn_metric_child(g, NULL, NULL), 0.25);
    sn_metric *h = add(reg, SN_METRIC_HISTOGRAM, "h_seconds", NULL, NULL);
    sn_series *hs = sn_metric_child(h, NULL, NULL);
    sn_series_observe(hs, 0.05);
    sn_series_observe(hs, 5);
    sn_series_observe(hs, 50);

    char *text = render(reg);
    assert_has(text,
               "# HELP esc_total a \\\\ backslash\\nand a newline\n# TYPE esc_total counter\n");
    assert_has(text, "esc_total{stage=\"q\\\"uote\",kind=\"back\\\\slash\\nnl\"} 3\n");
    assert_has(text, "# TYPE plain_gauge gauge\nplain_gauge 0.25\n");
    assert_has(text, "# TYPE h_seconds histogram\n"
                     "h_seconds_bucket{le=\"0.1\"} 1\n"
                     "h_seconds_bucket{le=\"1\"} 1\n"
                     "h_seconds_bucket{le=\"10\"} 2\n"
                     "h_seconds_bucket{le=\"+Inf\"} 3\n"
                     "h_seconds_sum 55.05\n"
                     "h_seconds_count 3\n");
    assert_has(text, "# TYPE stage_metrics_dropped_series_total counter\n");
    /* every line is a comment or "name[{labels}] value" */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            cr_assert(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
            continue;
        }
        char *sp = strrchr(line, ' ');
        cr_assert_not_null(sp, "no value: %s", line);
        char *end;
        strtod(sp + 1, &end);
        cr_assert(*end == '\0' || strcmp(sp + 1, "+Inf") == 0, "bad value: %s", line);
    }
    free(text);

    /* bad descriptions are refused */
    sn_metric *x;
    sn_metric_desc bad = {.type = SN_METRIC_COUNTER, .name = "9bad"};
    cr_assert_eq(sn_metrics_add(reg, &bad, &x), SN_EINVAL);
    bad.name = "esc_total";
    cr_assert_eq(sn_metrics_add(reg, &bad, &x), SN_EINVAL, "duplicate name");
    bad.name = "ok_total";
    bad.labels[1] = "gap";
    cr_assert_eq(sn_metrics_add(reg, &bad, &x), SN_EINVAL, "label gap");
    sn_metric_desc hb = {.type = SN_METRIC_HISTOGRAM,
                         .name = "hb",
                         .labels = {"le"},
                         .buckets = (const double[]){1, 2},
                         .nbuckets = 2};
    cr_assert_eq(sn_metrics_add(reg, &hb, &x), SN_EINVAL, "le is reserved");
    hb.labels[0] = NULL;
    hb.buckets = (const double[]){2, 1};
    cr_assert_eq(sn_metrics_add(reg, &hb, &x), SN_EINVAL, "buckets must ascend");

    /* a size limit below the text is refused, not cut */
    char *small = NULL;
    size_t len = 0;
    cr_assert_eq(sn_metrics_render(reg, 64, &small, &len), SN_ELIMIT);
    cr_assert_null(small);
    sn_metrics_destroy(&reg);
}

Test(sn_metrics, cardinality_cap_goes_to_overflow)
{
    sn_metrics *reg = sn_metrics_new(3);
    sn_metric *m = add(reg, SN_METRIC_COUNTER, "capped_total", "stage", "reason");
    sn_series *kept[3];
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", i);
        kept[i] = sn_metric_child(m, name, "r");
        sn_series_inc(kept[i]);
    }
    cr_assert_eq(sn_metric_child(m, "s1", "r"), kept[1], "lookups return the same handle");
    sn_series *o1 = sn_metric_child(m, "s3", "r");
    sn_series *o2 = sn_metric_child(m, "s4", "x");
    cr_assert_eq(o1, o2, "past the cap every new series is the overflow one");
    sn_series_inc(o1);
    sn_series_inc(o2);

    char *text = render(reg);
    assert_has(text, "capped_total{stage=\"s2\",reason=\"r\"} 1\n");
    assert_has(text, "capped_total{stage=\"_other\",reason=\"_other\"} 2\n");
    cr_assert_null(strstr(text, "s3"));
    assert_has(text, "stage_metrics_dropped_series_total{metric=\"capped_total\"} 2\n");
    free(text);
    sn_metrics_destroy(&reg);
}

static void collect(void *ud, sn_metrics_emitter *e)
{
    int *calls = ud;
    (*calls)++;
    sn_metrics_emit(e, "main", NULL, 7);
    sn_metrics_emit(e, "io", NULL, 1.5);
    sn_metrics_emit(e, "over", NULL, 1); /* the cap is 2 */
}

Test(sn_metrics, collector_fills_gauge_at_render)
{
    sn_metrics *reg = sn_metrics_new(2);
    sn_metric *g = add(reg, SN_METRIC_GAUGE, "depth", "stage", NULL);
    int calls = 0;
    sn_metric_set_collector(g, collect, &calls);
    char *text = render(reg);
    cr_assert_eq(calls, 1);
    assert_has(text, "depth{stage=\"main\"} 7\ndepth{stage=\"io\"} 1.5\n");
    cr_assert_null(strstr(text, "stage=\"over\""));
    free(text);
    text = render(reg);
    assert_has(text, "stage_metrics_dropped_series_total{metric=\"depth\"} 1\n");
    free(text);
    sn_metric_set_collector(g, NULL, NULL);
    text = render(reg);
    cr_assert_null(strstr(text, "depth{"));
    free(text);
    sn_metrics_destroy(&reg);
}

Test(sn_metrics, standard_set)
{
    sn_metrics *reg = sn_metrics_new(0);
    sn_metrics_std std;
    cr_assert_eq(sn_metrics_std_register(reg, &std, "n1", "demo", "0.1.0"), SN_OK);
    sn_series_inc(sn_metric_child(std.messages_in, "main", NULL));
    sn_series_add(sn_metric_child(std.messages_dropped, "main", "mailbox_full"), 2);
    sn_series_observe(sn_metric_child(std.handler_seconds, "main", NULL), 0.003);
    sn_series_set(std.workers, 4);
    sn_series_add(std.wire_bytes_out, 100);
    sn_series_inc(std.cache_hits);
    char *text = render(reg);
    const char *want[] = {
        "stage_messages_in_total{stage=\"main\"} 1\n",
        "stage_messages_dropped_total{stage=\"main\",reason=\"mailbox_full\"} 2\n",
        "stage_handler_seconds_bucket{stage=\"main\",le=\"0.001\"} 0\n",
        "stage_handler_seconds_bucket{stage=\"main\",le=\"0.005\"} 1\n",
        "stage_handler_seconds_bucket{stage=\"main\",le=\"0.0001\"} 0\n",
        "# TYPE stage_mailbox_depth gauge\n",
        "# TYPE stage_errors_total counter\n",
        "# TYPE stage_kills_total counter\n",
        "# TYPE stage_actors gauge\n",
        "stage_workers 4\n",
        "stage_jobs_total 0\n",
        "stage_jobs_running 0\n",
        "stage_peers{state=\"alive\"} 0\n",
        "stage_peers{state=\"left\"} 0\n",
        "stage_wire_bytes_total{direction=\"out\"} 100\n",
        "stage_wire_messages_total{direction=\"in\"} 0\n",
        "# TYPE stage_lua_memory_bytes gauge\n",
        "stage_function_cache_total{result=\"hit\"} 1\n",
        "stage_function_cache_total{result=\"miss\"} 0\n",
        "stage_node_info{node=\"n1\",cluster=\"demo\",version=\"0.1.0\"} 1\n",
        "# TYPE stage_uptime_seconds gauge\nstage_uptime_seconds ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_has(text, want[i]);
    free(text);
    sn_metrics_std again;
    cr_assert_eq(sn_metrics_std_register(reg, &again, "n1", "demo", "0.1.0"), SN_EINVAL);
    sn_metrics_destroy(&reg);
}

Test(sn_metrics, children_are_keyed_by_the_whole_list_of_values)
{
    sn_metrics *reg = sn_metrics_new(0);
    sn_metric *m = add(reg, SN_METRIC_COUNTER, "pairs_total", "a", "b");
    /* values that run together the same way are still different series */
    sn_series *s1 = sn_metric_child(m, "x:1", "y");
    sn_series *s2 = sn_metric_child(m, "x", "1:y");
    sn_series *s3 = sn_metric_child(m, "x:1y", "");
    sn_series *s4 = sn_metric_child(m, "x:1y", NULL);
    cr_assert_neq(s1, s2);
    cr_assert_neq(s1, s3);
    cr_assert_neq(s2, s3);
    cr_assert_eq(s3, s4, "NULL reads as \"\"");
    /* values are cut at SN_METRICS_MAX_LABEL_VALUE: longer ones that agree that far agree */
    char long1[SN_METRICS_MAX_LABEL_VALUE + 10], long2[SN_METRICS_MAX_LABEL_VALUE + 10];
    memset(long1, 'v', sizeof long1 - 1);
    long1[sizeof long1 - 1] = '\0';
    memcpy(long2, long1, sizeof long2);
    long2[SN_METRICS_MAX_LABEL_VALUE + 3] = 'w';
    cr_assert_eq(sn_metric_child(m, long1, "b"), sn_metric_child(m, long2, "b"));
    cr_assert_eq(sn_metric_child(m, "x:1", "y"), s1, "lookups return the same handle");
    sn_metrics_destroy(&reg);
}
