/* sn_loop and sn_timers: the loop runs exactly while work is pending or a timer is armed;
 * timers fire in time order, a cancelled one never fires, a job's re-run comes back. */
#include "sn_error.h"
#include "sn_loop.h"
#include "sn_timers.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static sn_log *log_;
static sn_loop *loop;
static sn_timers *timers;

typedef struct fired {
    uint64_t tasks[16];
    uint64_t actors[16];
    int n;
    sn_job *jobs[4];
    int njobs;
} fired;
static fired got;

static void actor_due(void *ud, uint64_t task, uint64_t actor)
{
    fired *f = ud;
    f->tasks[f->n] = task;
    f->actors[f->n] = actor;
    f->n++;
}

static void job_due(void *ud, sn_job *job)
{
    fired *f = ud;
    f->jobs[f->njobs++] = job;
}

static void setup(void)
{
    memset(&got, 0, sizeof got);
    log_ = sn_log_new(stderr, SN_LOG_ERROR);
    loop = sn_loop_new(log_);
    cr_assert_not_null(loop);
    sn_timers_hooks h = {.actor_due = actor_due, .job_due = job_due, .ud = &got};
    timers = sn_timers_new(loop, &h);
    cr_assert_not_null(timers);
}

static void teardown(void)
{
    for (int i = 0; i < got.njobs; i++)
        sn_job_destroy(&got.jobs[i]);
    sn_timers_destroy(&timers);
    sn_loop_destroy(&loop);
    sn_log_destroy(&log_);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TestSuite(sn_timers, .init = setup, .fini = teardown, .timeout = 10);
TestSuite(sn_loop, .init = setup, .fini = teardown, .timeout = 10);

Test(sn_timers, fire_in_time_order_then_the_loop_ends)
{
    cr_assert_eq(sn_timers_arm(timers, 1, 100, 30), SN_OK);
    cr_assert_eq(sn_timers_arm(timers, 2, 200, 10), SN_OK);
    cr_assert_eq(sn_timers_arm(timers, 3, 300, 20), SN_OK);
    double t0 = now();
    sn_loop_run(loop);
    cr_assert_geq(now() - t0, 0.025);
    cr_assert_eq(got.n, 3);
    cr_assert_eq(got.tasks[0], 2);
    cr_assert_eq(got.actors[0], 200);
    cr_assert_eq(got.tasks[1], 3);
    cr_assert_eq(got.tasks[2], 1);
}

/* libev measures a timer from its cached "now", which is as old as the loop's last wake-up
 * (or its creation): a timer armed after a slow start (a long main script) fired early by
 * that much. It counts from when it is armed. */
Test(sn_timers, timers_count_from_when_they_are_armed)
{
    usleep(80 * 1000); /* the loop's cached time is now 80 ms old */
    double t0 = now();
    cr_assert_eq(sn_timers_arm(timers, 1, 1, 40), SN_OK);
    sn_loop_run(loop);
    cr_assert_eq(got.n, 1);
    cr_assert_geq(now() - t0, 0.035, "fired after %.3f s, armed for 0.040", now() - t0);
}

Test(sn_timers, a_cancelled_timer_never_fires)
{
    cr_assert_eq(sn_timers_arm(timers, 7, 1, 20), SN_OK);
    cr_assert_eq(sn_timers_arm(timers, 7 + 256, 1, 40), SN_OK); /* same bucket */
    sn_timers_cancel(timers, 7);
    sn_timers_cancel(timers, 99); /* unknown: nothing */
    sn_loop_run(loop);
    cr_assert_eq(got.n, 1);
    cr_assert_eq(got.tasks[0], 7 + 256);
}

Test(sn_timers, a_job_rerun_comes_back)
{
    sn_job *job = sn_job_new(0, 5, 0, "x", 1, NULL, 0);
    cr_assert_not_null(job);
    sn_loop_work(loop, 1); /* the job's unit of work, which passes to the timer */
    cr_assert_eq(sn_timers_rerun(timers, job, 10), SN_OK);
    sn_loop_run(loop);
    cr_assert_eq(got.njobs, 1);
    cr_assert_eq(got.jobs[0], job);
}

Test(sn_timers, destroy_frees_what_never_fired)
{
    sn_job *job = sn_job_new(0, 5, 0, "x", 1, NULL, 0);
    cr_assert_eq(sn_timers_arm(timers, 1, 1, 60000), SN_OK);
    cr_assert_eq(sn_timers_rerun(timers, job, 60000), SN_OK);
    /* never run: the commands are dropped by the loop, under ASan nothing leaks */
}

static void *finish_later(void *arg)
{
    usleep(50 * 1000);
    sn_loop_work(arg, -1);
    return NULL;
}

Test(sn_loop, runs_while_work_is_pending)
{
    sn_loop_work(loop, 1);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, finish_later, loop), 0);
    double t0 = now();
    sn_loop_run(loop);
    cr_assert_geq(now() - t0, 0.045, "the loop waited for the work");
    pthread_join(t, NULL);
}

typedef struct flag_cmd {
    sn_loop_cmd cmd;
    int *ran;
} flag_cmd;

static void run_flag(sn_loop_cmd *c)
{
    *((flag_cmd *)c)->ran += 1;
}

static void drop_flag(sn_loop_cmd *c)
{
    (void)c;
}

static void *stop_later(void *arg)
{
    usleep(50 * 1000);
    sn_loop_stop(arg);
    return NULL;
}

Test(sn_loop, commands_run_on_the_loop_and_stop_ends_it)
{
    int ran = 0;
    flag_cmd c = {{.run = run_flag, .drop = drop_flag}, &ran};
    sn_loop_send(loop, &c.cmd);
    sn_loop_work(loop, 1); /* never finished: only sn_loop_stop ends the loop */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, stop_later, loop), 0);
    sn_loop_run(loop);
    pthread_join(t, NULL);
    cr_assert_eq(ran, 1);
    cr_assert(sn_loop_stopping(loop));
}
