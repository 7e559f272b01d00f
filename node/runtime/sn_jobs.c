/* sn_jobs: an sn_map of busy keys; each holds the FIFO of jobs waiting for it. */
#include "sn_jobs.h"
#include "sn_error.h"
#include "sn_map.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct busy_key {
    sn_job *head, *tail; /* waiting, FIFO */
} busy_key;

struct sn_jobs {
    pthread_mutex_t lock;
    sn_sched *sched;
    void (*run)(sn_task *t, void *worker);
    sn_map *busy; /* key -> busy_key * (owned): keys with a job running */
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
    j->busy = sn_map_new(SN_MAP_U64);
    if (!j->busy) {
        free(j);
        return NULL;
    }
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
    size_t pos = 0;
    sn_map_item it;
    while (sn_map_next(j->busy, &pos, &it)) {
        busy_key *b = it.value;
        while (b->head) {
            sn_job *job = b->head;
            b->head = job->next_same;
            sn_job_destroy(&job);
        }
        free(b);
    }
    sn_map_destroy(&j->busy);
    pthread_mutex_destroy(&j->lock);
    free(j);
    *jp = NULL;
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
    busy_key *b = sn_map_get(j->busy, (uint64_t)job->key);
    if (b) { /* the key is busy: wait behind it */
        if (b->tail)
            b->tail->next_same = job;
        else
            b->head = job;
        b->tail = job;
        pthread_mutex_unlock(&j->lock);
        return;
    }
    b = calloc(1, sizeof *b);
    if (b && sn_map_put(j->busy, (uint64_t)job->key, b) != SN_OK) {
        free(b);
        b = NULL;
    }
    /* when the key cannot be tracked (b NULL): run anyway rather than lose the job */
    pthread_mutex_unlock(&j->lock);
    schedule(j, job);
}

void sn_jobs_done(sn_jobs *j, sn_job *job)
{
    if (job->key == 0)
        return;
    pthread_mutex_lock(&j->lock);
    busy_key *b = sn_map_get(j->busy, (uint64_t)job->key);
    sn_job *next = NULL;
    if (b && b->head) {
        next = b->head;
        b->head = next->next_same;
        if (!b->head)
            b->tail = NULL;
        next->next_same = NULL;
    } else if (b) {
        sn_map_del(j->busy, (uint64_t)job->key);
        free(b);
    }
    pthread_mutex_unlock(&j->lock);
    if (next)
        schedule(j, next);
}
