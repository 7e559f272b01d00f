/* bench_spread.h: a figure measured over several runs, reported as its median and its range
 * (issue 17: one run on a noisy shared machine is not a figure). A target counts as met only
 * when every run met it: the verdict uses the worst ratio, not the median. */
#ifndef SN_BENCH_SPREAD_H
#define SN_BENCH_SPREAD_H

#include "bench.h"

#include <stdio.h>
#include <time.h>

enum { BENCH_MAX_RUNS = 16 };

typedef struct bench_spread {
    double v[BENCH_MAX_RUNS];
    int n;
} bench_spread;

static inline void bench_spread_add(bench_spread *s, double x)
{
    if (s->n < BENCH_MAX_RUNS) s->v[s->n++] = x;
}

static inline double bench_spread_at(const bench_spread *s, int which) /* -1 lo, 0 med, 1 hi */
{
    double v[BENCH_MAX_RUNS];
    for (int i = 0; i < s->n; i++)
        v[i] = s->v[i];
    for (int i = 1; i < s->n; i++) /* insertion sort: a handful of runs */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    if (s->n == 0) return 0;
    if (which < 0) return v[0];
    if (which > 0) return v[s->n - 1];
    return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

/* "median unit (lo-hi)" into buf */
static inline const char *bench_spread_fmt(char *buf, size_t size, const bench_spread *s,
                                           const char *unit)
{
    snprintf(buf, size, "%.4g %s (%.4g-%.4g)", bench_spread_at(s, 0), unit, bench_spread_at(s, -1),
             bench_spread_at(s, 1));
    return buf;
}

/* CPU seconds of the calling thread. */
static inline double bench_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One row: figure and baseline over the runs, the ratio of each run's pair, and a verdict
 * from the worst run (lower_is_better: the highest ratio must be <= target; otherwise the
 * lowest >= target). extra (may be NULL) follows the figure, e.g. the wall time beside CPU. */
static inline void bench_row_spread(const char *area, const char *name, const bench_spread *fig,
                                    const bench_spread *base, const bench_spread *ratio,
                                    const char *unit, const char *extra, double target,
                                    int lower_is_better)
{
    char f[96], b[96], r[96], tgt[32] = "-";
    const char *verdict = "n/a";
    if (target > 0) {
        double worst = bench_spread_at(ratio, lower_is_better ? 1 : -1);
        int met = lower_is_better ? worst <= target : worst >= target;
        verdict = met ? "met" : "**missed**";
        snprintf(tgt, sizeof tgt, "%s %.2fx", lower_is_better ? "<=" : ">=", target);
    }
    snprintf(r, sizeof r, "%.2fx (%.2f-%.2f)", bench_spread_at(ratio, 0),
             bench_spread_at(ratio, -1), bench_spread_at(ratio, 1));
    printf("| %s | %s, median of %d runs (range) | %s%s%s | %s | %s | %s | %s |\n", area, name,
           fig->n, bench_spread_fmt(f, sizeof f, fig, unit), extra ? "; " : "", extra ? extra : "",
           base ? bench_spread_fmt(b, sizeof b, base, unit) : "-", r, tgt, verdict);
    fflush(stdout);
}

#endif
