/* sn_guard: one thread waiting on a condition variable with a deadline. */
#include "sn_guard.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct sn_guard {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int disarmed;
    int ms, status;
    sn_log *log;
};

static void *watch(void *p)
{
    sn_guard *g = p;
    struct timespec until;
    sn_clock_deadline(&until, (int64_t)g->ms * 1000000);
    pthread_mutex_lock(&g->lock);
    int rc = 0;
    while (!g->disarmed && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cond, &g->lock, &until);
    int fire = !g->disarmed;
    pthread_mutex_unlock(&g->lock);
    if (fire) {
        sn_log_write(g->log, SN_LOG_ERROR, NULL,
                     "shutdown did not finish within %d ms "
                     "(--set shutdown): exiting now with status %d",
                     g->ms, g->status);
        _exit(g->status);
    }
    return NULL;
}

sn_guard *sn_guard_new(int ms, int status, sn_log *log)
{
    sn_guard *g = calloc(1, sizeof *g);
    if (!g) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "shutdown unbounded: %s", sn_strerror(SN_ENOMEM));
        return NULL;
    }
    g->ms = ms;
    g->status = status;
    g->log = log;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&g->thread, NULL, watch, g) != 0) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "shutdown unbounded: cannot start its guard");
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    return g;
}

void sn_guard_destroy(sn_guard **gp)
{
    if (!gp || !*gp) return;
    sn_guard *g = *gp;
    pthread_mutex_lock(&g->lock);
    g->disarmed = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
    free(g);
    *gp = NULL;
}
