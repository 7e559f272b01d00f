/* sn_jobs: key 0 runs at once; one non-zero key runs one job at a time, in order. */
#include "sn_error.h"
#include "sn_jobs.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static sn_jobs *jobs;
static atomic_int inflight7, max7, done;
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static int order[64], norder;

static void run(sn_task *t, void *w)
{
    (void)w;
    sn_job *job = sn_job_of_task(t);
    if (job->key == 7) {
        int now = atomic_fetch_add(&inflight7, 1) + 1;
        int m = atomic_load(&max7);
        while (now > m && !atomic_compare_exchange_weak(&max7, &m, now))
            ;
        usleep(1000);
        pthread_mutex_lock(&order_lock);
        order[norder++] = (int)job->owner;
        pthread_mutex_unlock(&order_lock);
        atomic_fetch_sub(&inflight7, 1);
    }
    sn_jobs_done(jobs, job);
    sn_job_destroy(&job);
    atomic_fetch_add(&done, 1);
}

Test(sn_jobs, same_key_serial_in_order)
{
    sn_sched_hooks h = {0};
    int err;
    sn_sched *s = sn_sched_new(4, &h, &err);
    jobs = sn_jobs_new(s, run);
    for (int i = 0; i < 20; i++)
        sn_jobs_submit(jobs, sn_job_new(7, (uint64_t)i, 0, "x", 1, NULL, 0));
    for (int i = 0; i < 20; i++)
        sn_jobs_submit(jobs, sn_job_new(0, 99, 0, "y", 1, NULL, 0));
    while (atomic_load(&done) < 40)
        usleep(1000);
    sn_sched_destroy(&s);
    sn_jobs_destroy(&jobs);
    cr_assert_eq(atomic_load(&max7), 1, "key 7 jobs overlapped");
    cr_assert_eq(norder, 20);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(order[i], i, "key 7 job %d ran at position %d", order[i], i);
}

Test(sn_jobs, job_record_copies)
{
    const char policy[] = "A\0B";
    sn_job *j = sn_job_new(3, 1, 2, "abc", 3, policy, sizeof policy);
    cr_assert_eq(j->len, 3);
    cr_assert_eq(memcmp(j->data, "abc", 3), 0);
    cr_assert_str_eq(j->policy + 2, "B");
    cr_assert_eq(sn_job_of_task(&j->task), j);
    sn_job_destroy(&j);
    cr_assert_null(j);
}
