/* sn_sessions: a list under one mutex; sessions are few (one per request in flight). */
#include "sn_sessions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_sessions {
    pthread_mutex_t mu;
    sn_session *list;
    size_t n;
    uint64_t next_id;
};

sn_sessions *sn_sessions_new(void)
{
    sn_sessions *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->next_id = 1;
    return s;
}

void sn_sessions_destroy(sn_sessions **sp)
{
    if (!sp || !*sp)
        return;
    sn_sessions *s = *sp;
    sn_sessions_free_list(s->list);
    pthread_mutex_destroy(&s->mu);
    free(s);
    *sp = NULL;
}

uint64_t sn_sessions_add(sn_sessions *s, uint64_t actor, const char *rid, const char *node,
                         uint64_t inc, double deadline, int many)
{
    sn_session *q = calloc(1, sizeof *q);
    if (!q)
        return 0;
    q->actor = actor;
    snprintf(q->rid, sizeof q->rid, "%s", rid);
    snprintf(q->node, sizeof q->node, "%s", node);
    q->inc = inc;
    q->deadline = deadline;
    q->many = many;
    pthread_mutex_lock(&s->mu);
    q->id = s->next_id++;
    q->next = s->list;
    s->list = q;
    s->n++;
    pthread_mutex_unlock(&s->mu);
    return q->id;
}

static int find(sn_sessions *s, uint64_t id, sn_session *out, int keep_many)
{
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (sn_session **pp = &s->list; *pp; pp = &(*pp)->next) {
        sn_session *q = *pp;
        if (q->id != id)
            continue;
        found = 1;
        if (keep_many && q->many) {
            q->answered++;
            *out = *q;
        } else {
            *pp = q->next;
            s->n--;
            *out = *q;
            free(q);
        }
        break;
    }
    pthread_mutex_unlock(&s->mu);
    if (found)
        out->next = NULL;
    return found;
}

int sn_sessions_answer(sn_sessions *s, uint64_t id, sn_session *out)
{
    return find(s, id, out, 1);
}

int sn_sessions_take(sn_sessions *s, uint64_t id, sn_session *out)
{
    return find(s, id, out, 0);
}

static sn_session *take_if(sn_sessions *s, const char *node, uint64_t inc, int skip_inc,
                           double due)
{
    sn_session *out = NULL;
    pthread_mutex_lock(&s->mu);
    for (sn_session **pp = &s->list; *pp;) {
        sn_session *q = *pp;
        int match = node ? strcmp(q->node, node) == 0 &&
                               (!inc || (skip_inc ? q->inc != inc : q->inc == inc))
                         : q->deadline <= due;
        if (match) {
            *pp = q->next;
            s->n--;
            q->next = out;
            out = q;
        } else {
            pp = &q->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return out;
}

sn_session *sn_sessions_take_node(sn_sessions *s, const char *node, uint64_t inc, int skip_inc)
{
    return take_if(s, node, inc, skip_inc, 0);
}

sn_session *sn_sessions_take_due(sn_sessions *s, double now)
{
    return take_if(s, NULL, 0, 0, now);
}

void sn_sessions_free_list(sn_session *list)
{
    while (list) {
        sn_session *q = list;
        list = q->next;
        free(q);
    }
}

size_t sn_sessions_count(sn_sessions *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}
