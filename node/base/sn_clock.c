/* sn_clock: clock_gettime, read as seconds. */
#include "sn_clock.h"

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
