/* sn_clock: the node's clocks, in seconds as doubles. The one place that reads them, so a
 * reader finds every notion of "now" here. Any thread. */
#ifndef SN_CLOCK_H
#define SN_CLOCK_H

#include <time.h>

/* sn_clock_mono: monotonic seconds (CLOCK_MONOTONIC): for durations and deadlines. */
double sn_clock_mono(void);
/* sn_clock_wall: seconds since the epoch (CLOCK_REALTIME): for timestamps shown to people. */
double sn_clock_wall(void);
/* sn_clock_seconds: clock id in seconds (e.g. CLOCK_THREAD_CPUTIME_ID for CPU time);
 * 0 when the clock cannot be read. */
double sn_clock_seconds(clockid_t id);

#endif
