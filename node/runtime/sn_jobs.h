/* sn_jobs: jobs of stage.submit / thread.new and their keys: key-0 jobs run as soon as a
 * worker is free; jobs with the same non-zero key run one at a time, in submission order,
 * without holding up other keys. */
#ifndef SN_JOBS_H
#define SN_JOBS_H

#include "sn_sched.h"

#include <stddef.h>
#include <stdint.h>

/* One job: a snapshot of (fn, args...) and who submitted it. A plain record. */
typedef struct sn_job {
    sn_task task;             /* scheduled through this; first member */
    struct sn_job *next_same; /* waiting behind the running job of its key */
    int64_t key;
    uint64_t owner;           /* submitting actor id */
    uint64_t handle;          /* thread.new handle, or 0 for stage.submit */
    uint64_t seq;             /* job number, for logs */
    char who[64];             /* the submitting actor's name, for logs */
    char stage[64];           /* the submitting actor's stage id */
    char *policy;             /* the submitter's starred names, each NUL-terminated */
    size_t policy_len;
    char *data;               /* snapshot of fn and its arguments */
    size_t len;
} sn_job;

typedef struct sn_jobs sn_jobs;

/* sn_job_new: a job copying data and policy. NULL on out of memory. Caller owns it. */
sn_job *sn_job_new(int64_t key, uint64_t owner, uint64_t handle, const void *data, size_t len,
                   const void *policy, size_t policy_len);
/* sn_job_destroy: frees *jp (NULL is fine) and nulls it. */
void sn_job_destroy(sn_job **jp);
/* sn_job_of_task: the job whose task is t. */
sn_job *sn_job_of_task(sn_task *t);

/* sn_jobs_new: a key table pushing runnable jobs to sched, each run by run(task, worker). */
sn_jobs *sn_jobs_new(sn_sched *sched, void (*run)(sn_task *t, void *worker));
/* sn_jobs_destroy: frees the table and every job still waiting on a key; NULL is fine. */
void sn_jobs_destroy(sn_jobs **jp);

/* sn_jobs_submit: schedules job now, or queues it behind the running job of its key.
 * The table holds it until sn_jobs_done. Any thread. */
void sn_jobs_submit(sn_jobs *j, sn_job *job);
/* sn_jobs_done: job's run ended; the next job of its key (if any) is scheduled. The caller
 * keeps job (to run it again later, or to destroy it). Any thread. */
void sn_jobs_done(sn_jobs *j, sn_job *job);

#endif
