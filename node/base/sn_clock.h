/* sn_clock: the node's clocks, in seconds as doubles. The one place that reads them, so a
 * reader finds every notion of "now" here. Any thread. */
#ifndef SN_CLOCK_H
#define SN_CLOCK_H

#include <stdint.h>
#include <time.h>

/* sn_clock_mono: monotonic seconds (CLOCK_MONOTONIC): for durations and deadlines. */
double sn_clock_mono(void);
/* sn_clock_deadline: sets ts to ns nanoseconds (>= 0) from now on CLOCK_MONOTONIC, normalised:
 * the absolute deadline of pthread_cond_timedwait on a condvar set to CLOCK_MONOTONIC. */
void sn_clock_deadline(struct timespec *ts, int64_t ns);
/* sn_clock_wall: seconds since the epoch (CLOCK_REALTIME): for timestamps shown to people. */
double sn_clock_wall(void);
/* sn_clock_seconds: clock id in seconds (e.g. CLOCK_THREAD_CPUTIME_ID for CPU time);
 * 0 when the clock cannot be read. */
double sn_clock_seconds(clockid_t id);

#endif
