/* sn_clock: the monotonic clock never goes back and measures a sleep; the wall clock is the
 * epoch time; a CPU clock counts work. */
#include "sn_clock.h"

#include <criterion/criterion.h>
#include <math.h>
#include <time.h>

Test(sn_clock, mono_is_monotonic_and_measures_a_sleep)
{
    double a = sn_clock_mono();
    cr_assert_gt(a, 0);
    double prev = a;
    for (int i = 0; i < 100000; i++) {
        double now = sn_clock_mono();
        cr_assert_geq(now, prev);
        prev = now;
    }
    struct timespec nap = {0, 50 * 1000 * 1000};
    double before = sn_clock_mono();
    nanosleep(&nap, NULL);
    double slept = sn_clock_mono() - before;
    cr_assert(slept >= 0.049 && slept < 5, "slept %f s", slept);
}

Test(sn_clock, wall_is_epoch_seconds)
{
    double w = sn_clock_wall();
    cr_assert_lt(fabs(w - (double)time(NULL)), 2.0, "wall %f vs time() %ld", w, (long)time(NULL));
}

Test(sn_clock, seconds_reads_any_clock)
{
    double cpu0 = sn_clock_seconds(CLOCK_THREAD_CPUTIME_ID);
    volatile double x = 0;
    for (int i = 0; i < 2000000; i++)
        x += i;
    double cpu1 = sn_clock_seconds(CLOCK_THREAD_CPUTIME_ID);
    cr_assert_gt(cpu1, cpu0, "work takes CPU time");
    cr_assert_eq(sn_clock_seconds((clockid_t)999), 0, "an unreadable clock reads 0");
}

/* A deadline lies the delay after the monotonic now read around it (between the reads before
 * and after the call), with tv_nsec in range whatever the delay (a carry past a second,
 * several seconds). */
Test(sn_clock, deadline_is_normalised_and_after_the_delay)
{
    const int64_t delays[] = {0, 1, 999999999, 1000000000, 1500000000, 3000000001};
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        double before = sn_clock_mono();
        struct timespec ts;
        sn_clock_deadline(&ts, delays[i]);
        double after = sn_clock_mono();
        cr_assert(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L, "tv_nsec %ld", ts.tv_nsec);
        double at = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9, d = delays[i] * 1e-9;
        cr_assert(at >= before + d - 1e-6 && at <= after + d + 1e-6,
                  "deadline %f not within [%f, %f] + %f", at, before, after, d);
    }
}
