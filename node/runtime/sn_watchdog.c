/* sn_watchdog: wakes once a second and asks each worker how long it has been on its current
 * entry. */
#include "sn_watchdog.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct sn_watchdog {
    const sn_vm_ops *vm;
    sn_log *log;
    double threshold;
    void **workers; /* by index, filled by each worker as it starts */
    double *last;   /* the busy time last warned about, by index */
    int nworkers;
    pthread_t thread;
    int running;
    pthread_mutex_t lock;
    pthread_cond_t stop;
    int quit;
};

static void *watch(void *arg)
{
    sn_watchdog *wd = arg;
    pthread_mutex_lock(&wd->lock);
    while (!wd->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&wd->stop, &wd->lock, &ts);
        for (int i = 0; i < wd->nworkers && !wd->quit; i++) {
            char who[96], what[128];
            double busy = wd->workers[i] ? wd->vm->worker_busy_for(wd->vm->ud, wd->workers[i],
                                                                    who, sizeof who, what,
                                                                    sizeof what)
                                         : 0;
            if (busy < wd->threshold) {
                wd->last[i] = 0;
            } else if (busy - wd->last[i] >= wd->threshold) {
                wd->last[i] = busy;
                sn_log_write(wd->log, SN_LOG_WARN, who, "actor %s busy for %.0f s%s%s%s", who,
                             busy, what[0] ? " in handler '" : "", what, what[0] ? "'" : "");
            }
        }
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

sn_watchdog *sn_watchdog_new(int nworkers, double threshold, const sn_vm_ops *vm, sn_log *log)
{
    sn_watchdog *wd = calloc(1, sizeof *wd);
    if (!wd)
        return NULL;
    wd->workers = calloc((size_t)nworkers, sizeof *wd->workers);
    wd->last = calloc((size_t)nworkers, sizeof *wd->last);
    if (!wd->workers || !wd->last) {
        free(wd->workers);
        free(wd->last);
        free(wd);
        return NULL;
    }
    wd->vm = vm;
    wd->log = log;
    wd->threshold = threshold > 0 ? threshold : 5.0;
    wd->nworkers = nworkers;
    pthread_mutex_init(&wd->lock, NULL);
    pthread_cond_init(&wd->stop, NULL);
    if (pthread_create(&wd->thread, NULL, watch, wd) == 0)
        wd->running = 1;
    else
        sn_log_write(log, SN_LOG_WARN, NULL, "no watchdog: cannot start its thread");
    return wd;
}

void sn_watchdog_worker(sn_watchdog *wd, int index, void *worker)
{
    pthread_mutex_lock(&wd->lock);
    if (index >= 0 && index < wd->nworkers)
        wd->workers[index] = worker;
    pthread_mutex_unlock(&wd->lock);
}

void sn_watchdog_stop(sn_watchdog *wd)
{
    if (!wd || !wd->running)
        return;
    pthread_mutex_lock(&wd->lock);
    wd->quit = 1;
    pthread_cond_signal(&wd->stop);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
    wd->running = 0;
}

void sn_watchdog_destroy(sn_watchdog **wp)
{
    if (!wp || !*wp)
        return;
    sn_watchdog *wd = *wp;
    sn_watchdog_stop(wd);
    pthread_mutex_destroy(&wd->lock);
    pthread_cond_destroy(&wd->stop);
    free(wd->workers);
    free(wd->last);
    free(wd);
    *wp = NULL;
}
