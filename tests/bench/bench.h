/* bench.h: the one way every benchmark times itself and reports a row.
 * A benchmark runs its baseline in the same process run and prints markdown rows:
 *   | area | benchmark | figure | baseline | ratio | target | verdict |
 * scripts/bench.sh collects the rows of every bench_* program into docs/benchmarks.md. */
#ifndef SN_BENCH_H
#define SN_BENCH_H

#include <stdio.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best of `reps` runs of fn(arg, iters), in seconds per iteration. Best-of filters noise. */
static inline double bench_best(double (*fn)(void *, long), void *arg, long iters, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = fn(arg, iters);
        if (t < best)
            best = t;
    }
    return best / (double)iters;
}

/* One row. lower_is_better: ratio = figure/baseline, met when ratio <= target.
 * Otherwise (rates) ratio = figure/baseline, met when ratio >= target. target <= 0: no target. */
static inline void bench_row(const char *area, const char *name, double figure, double baseline,
                             const char *unit, double target, int lower_is_better)
{
    double ratio = baseline > 0 ? figure / baseline : 0;
    const char *verdict = "n/a";
    char tgt[64] = "-";
    if (target > 0) {
        int met = lower_is_better ? ratio <= target : ratio >= target;
        verdict = met ? "met" : "**missed**";
        snprintf(tgt, sizeof tgt, "%s %.2fx", lower_is_better ? "<=" : ">=", target);
    }
    printf("| %s | %s | %.4g %s | %.4g %s | %.2fx | %s | %s |\n", area, name, figure, unit,
           baseline, unit, ratio, tgt, verdict);
    fflush(stdout);
}

#endif
