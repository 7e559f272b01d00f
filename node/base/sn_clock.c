/* sn_clock: clock_gettime, read as seconds or as a condvar deadline. */
#include "sn_clock.h"

#include <assert.h>

double sn_clock_seconds(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double sn_clock_mono(void)
{
    return sn_clock_seconds(CLOCK_MONOTONIC);
}

double sn_clock_wall(void)
{
    return sn_clock_seconds(CLOCK_REALTIME);
}

void sn_clock_deadline(struct timespec *ts, int64_t ns)
{
    assert(ns >= 0 && "sn_clock_deadline: negative delay");
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t nsec = (int64_t)ts->tv_nsec + ns % 1000000000;
    ts->tv_sec += (time_t)(ns / 1000000000 + nsec / 1000000000);
    ts->tv_nsec = (long)(nsec % 1000000000);
}
