/* sn_timers: each request is a loop command; armed timers sit in buckets by task id so a
 * cancel finds them (re-runs under id 0). */
#include "sn_timers.h"
#include "sn_error.h"

#include <ev.h>
#include <stddef.h>
#include <stdlib.h>

enum { TIMER_BUCKETS = 256 };

typedef enum timer_kind { T_RERUN, T_ARM, T_CANCEL } timer_kind;

typedef struct timer {
    sn_loop_cmd cmd;     /* first */
    ev_timer w;
    struct timer *next;  /* in its bucket */
    sn_timers *owner;
    timer_kind kind;
    uint64_t id;         /* task id (T_ARM, T_CANCEL) */
    uint64_t actor;      /* T_ARM */
    sn_job *job;         /* T_RERUN */
    double delay;
} timer;

struct sn_timers {
    sn_loop *loop;
    sn_timers_hooks hooks;
    timer *armed[TIMER_BUCKETS]; /* loop thread */
};

static timer **bucket_of(sn_timers *ts, uint64_t id)
{
    return &ts->armed[id % TIMER_BUCKETS];
}

static void unlink_timer(sn_timers *ts, timer *t)
{
    for (timer **p = bucket_of(ts, t->id); *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            return;
        }
    }
}

static void free_timer(timer *t)
{
    sn_job_destroy(&t->job);
    free(t);
}

static void drop_cmd(sn_loop_cmd *c)
{
    free_timer((timer *)c);
}

static void on_timer(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)revents;
    timer *t = (timer *)((char *)w - offsetof(timer, w));
    sn_timers *ts = t->owner;
    ev_timer_stop(ev, w);
    unlink_timer(ts, t);
    if (t->kind == T_RERUN) {
        ts->hooks.job_due(ts->hooks.ud, t->job);
        t->job = NULL;
    } else {
        ts->hooks.actor_due(ts->hooks.ud, t->id, t->actor);
    }
    free(t);
    sn_loop_hold(ts->loop);
}

static void run_cmd(sn_loop_cmd *c)
{
    timer *t = (timer *)c;
    sn_timers *ts = t->owner;
    struct ev_loop *ev = sn_loop_ev(ts->loop);
    if (t->kind == T_CANCEL) {
        for (timer *a = *bucket_of(ts, t->id); a; a = a->next) {
            if (a->kind == T_ARM && a->id == t->id) {
                ev_timer_stop(ev, &a->w);
                unlink_timer(ts, a);
                free_timer(a);
                break;
            }
        }
        free_timer(t);
        return;
    }
    /* libev counts from its cached time, as old as the loop's last wake-up (or its creation,
     * for what a main script armed before the loop ran): count from now */
    ev_now_update(ev);
    ev_timer_init(&t->w, on_timer, t->delay, 0);
    ev_timer_start(ev, &t->w);
    t->next = *bucket_of(ts, t->id);
    *bucket_of(ts, t->id) = t;
    sn_loop_work(ts->loop, -1); /* the armed timer keeps the loop alive from now on */
}

static timer *new_timer(sn_timers *ts, timer_kind kind, uint64_t id)
{
    timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cmd.run = run_cmd;
    t->cmd.drop = drop_cmd;
    t->owner = ts;
    t->kind = kind;
    t->id = id;
    return t;
}

sn_timers *sn_timers_new(sn_loop *loop, const sn_timers_hooks *hooks)
{
    sn_timers *ts = calloc(1, sizeof *ts);
    if (!ts)
        return NULL;
    ts->loop = loop;
    ts->hooks = *hooks;
    return ts;
}

void sn_timers_destroy(sn_timers **tp)
{
    if (!tp || !*tp)
        return;
    sn_timers *ts = *tp;
    for (int i = 0; i < TIMER_BUCKETS; i++) {
        for (timer *t = ts->armed[i]; t;) {
            timer *next = t->next;
            free_timer(t);
            t = next;
        }
    }
    free(ts);
    *tp = NULL;
}

int sn_timers_arm(sn_timers *ts, uint64_t task, uint64_t actor, double ms)
{
    timer *t = new_timer(ts, T_ARM, task);
    if (!t)
        return SN_ENOMEM;
    t->actor = actor;
    t->delay = ms > 0 ? ms / 1000.0 : 0;
    sn_loop_work(ts->loop, 1); /* until the loop has armed it */
    sn_loop_send(ts->loop, &t->cmd);
    return SN_OK;
}

void sn_timers_cancel(sn_timers *ts, uint64_t task)
{
    timer *t = new_timer(ts, T_CANCEL, task);
    if (t) /* else it fires and finds no task: harmless */
        sn_loop_send(ts->loop, &t->cmd);
}

int sn_timers_rerun(sn_timers *ts, sn_job *job, double ms)
{
    timer *t = new_timer(ts, T_RERUN, 0);
    if (!t)
        return SN_ENOMEM;
    t->job = job;
    t->delay = ms / 1000.0;
    sn_loop_send(ts->loop, &t->cmd);
    return SN_OK;
}
