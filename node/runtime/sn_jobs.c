/* sn_jobs: a chained hash of busy keys; each holds the FIFO of jobs waiting for it. */
#include "sn_jobs.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { BUCKETS = 256 };

typedef struct busy_key {
    struct busy_key *next;
    int64_t key;
    sn_job *head, *tail; /* waiting, FIFO */
} busy_key;

struct sn_jobs {
    pthread_mutex_t lock;
    sn_sched *sched;
    void (*run)(sn_task *t, void *worker);
    busy_key *bucket[BUCKETS];
};

sn_job *sn_job_new(int64_t key, uint64_t owner, uint64_t handle, const void *data, size_t len,
                   const void *policy, size_t policy_len)
{
    sn_job *job = calloc(1, sizeof *job + len + policy_len);
    if (!job)
        return NULL;
    job->key = key;
    job->owner = owner;
    job->handle = handle;
    job->data = (char *)(job + 1);
    job->len = len;
    memcpy(job->data, data, len);
    job->policy = job->data + len;
    job->policy_len = policy_len;
    if (policy_len)
        memcpy(job->policy, policy, policy_len);
    return job;
}

void sn_job_destroy(sn_job **jp)
{
    if (!jp || !*jp)
        return;
    free(*jp);
    *jp = NULL;
}

sn_job *sn_job_of_task(sn_task *t)
{
    return (sn_job *)t; /* task is the first member */
}

sn_jobs *sn_jobs_new(sn_sched *sched, void (*run)(sn_task *t, void *worker))
{
    sn_jobs *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->lock, NULL);
    j->sched = sched;
    j->run = run;
    return j;
}

void sn_jobs_destroy(sn_jobs **jp)
{
    if (!jp || !*jp)
        return;
    sn_jobs *j = *jp;
    for (int i = 0; i < BUCKETS; i++) {
        busy_key *b = j->bucket[i];
        while (b) {
            busy_key *next = b->next;
            while (b->head) {
                sn_job *job = b->head;
                b->head = job->next_same;
                sn_job_destroy(&job);
            }
            free(b);
            b = next;
        }
    }
    pthread_mutex_destroy(&j->lock);
    free(j);
    *jp = NULL;
}

static busy_key **find(sn_jobs *j, int64_t key)
{
    busy_key **p = &j->bucket[(uint64_t)key % BUCKETS];
    while (*p && (*p)->key != key)
        p = &(*p)->next;
    return p;
}

static void schedule(sn_jobs *j, sn_job *job)
{
    job->task.run = j->run;
    sn_sched_push(j->sched, &job->task);
}

void sn_jobs_submit(sn_jobs *j, sn_job *job)
{
    job->next_same = NULL;
    if (job->key == 0) {
        schedule(j, job);
        return;
    }
    pthread_mutex_lock(&j->lock);
    busy_key **p = find(j, job->key);
    if (*p) { /* the key is busy: wait behind it */
        if ((*p)->tail)
            (*p)->tail->next_same = job;
        else
            (*p)->head = job;
        (*p)->tail = job;
        pthread_mutex_unlock(&j->lock);
        return;
    }
    busy_key *b = calloc(1, sizeof *b);
    if (!b) { /* cannot track the key: run anyway rather than lose the job */
        pthread_mutex_unlock(&j->lock);
        schedule(j, job);
        return;
    }
    b->key = job->key;
    *p = b;
    pthread_mutex_unlock(&j->lock);
    schedule(j, job);
}

void sn_jobs_done(sn_jobs *j, sn_job *job)
{
    if (job->key == 0)
        return;
    pthread_mutex_lock(&j->lock);
    busy_key **p = find(j, job->key);
    busy_key *b = *p;
    sn_job *next = NULL;
    if (b && b->head) {
        next = b->head;
        b->head = next->next_same;
        if (!b->head)
            b->tail = NULL;
        next->next_same = NULL;
    } else if (b) {
        *p = b->next;
        free(b);
    }
    pthread_mutex_unlock(&j->lock);
    if (next)
        schedule(j, next);
}
