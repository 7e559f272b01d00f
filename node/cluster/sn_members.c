/* sn_members: a list of records under one mutex, and a ring of forgotten incarnations. The
 * list is short-lived work for the loop thread; other threads only read it, briefly. */
#include "sn_members.h"
#include "sn_error.h"
#include "sn_map.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"alive", "suspect", "down", "left"};

typedef struct forgotten {
    char name[SN_ROUTER_NODE_MAX];
    uint64_t inc;
} forgotten;

struct sn_members {
    pthread_mutex_t mu;
    char self[SN_ROUTER_NODE_MAX];
    sn_log *log;
    sn_member *list;
    size_t n;
    size_t cursor;   /* the next member to probe, by position */
    int probing;     /* the last sn_members_choose */
    forgotten *gone; /* grows to SN_MEMBERS_FORGOTTEN_MAX, then a ring */
    size_t ngone, gone_cap, gone_next;
};

const char *sn_member_state_name(sn_member_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "?";
}

sn_members *sn_members_new(const char *self, sn_log *log)
{
    sn_members *ms = calloc(1, sizeof *ms);
    if (!ms)
        return NULL;
    pthread_mutex_init(&ms->mu, NULL);
    snprintf(ms->self, sizeof ms->self, "%s", self);
    ms->log = log;
    return ms;
}

static void free_member(sn_member *m)
{
    free(m->stages);
    free(m->status_json);
    free(m);
}

void sn_members_destroy(sn_members **mp)
{
    if (!mp || !*mp)
        return;
    sn_members *ms = *mp;
    while (ms->list) {
        sn_member *m = ms->list;
        ms->list = m->next;
        free_member(m);
    }
    free(ms->gone);
    pthread_mutex_destroy(&ms->mu);
    free(ms);
    *mp = NULL;
}

void sn_members_lock(sn_members *ms)
{
    pthread_mutex_lock(&ms->mu);
}

void sn_members_unlock(sn_members *ms)
{
    pthread_mutex_unlock(&ms->mu);
}

sn_member *sn_members_first(sn_members *ms)
{
    return ms->list;
}

sn_member *sn_members_find(sn_members *ms, const char *name)
{
    for (sn_member *m = ms->list; m; m = m->next) {
        if (strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
}

int sn_members_forgotten(sn_members *ms, const char *name, uint64_t inc)
{
    for (size_t i = 0; i < ms->ngone; i++) {
        if (ms->gone[i].inc >= inc && strcmp(ms->gone[i].name, name) == 0)
            return 1;
    }
    return 0;
}

static void remember_forgotten(sn_members *ms, const sn_member *m)
{
    for (size_t i = 0; i < ms->ngone; i++) { /* one entry per name: the newest incarnation */
        if (strcmp(ms->gone[i].name, m->name) == 0) {
            if (ms->gone[i].inc < m->inc)
                ms->gone[i].inc = m->inc;
            return;
        }
    }
    size_t at = ms->ngone;
    if (ms->ngone == SN_MEMBERS_FORGOTTEN_MAX) { /* full: the ring overwrites the oldest */
        at = ms->gone_next;
        ms->gone_next = (ms->gone_next + 1) % SN_MEMBERS_FORGOTTEN_MAX;
        sn_log_write(ms->log, SN_LOG_WARN, "cluster", "more than %d forgotten members "
                     "(SN_MEMBERS_FORGOTTEN_MAX): the oldest, %s, may greet again",
                     SN_MEMBERS_FORGOTTEN_MAX, ms->gone[at].name);
    } else if (ms->ngone == ms->gone_cap) { /* grows as needed, up to the max */
        size_t cap = ms->gone_cap ? ms->gone_cap * 2 : 16;
        if (cap > SN_MEMBERS_FORGOTTEN_MAX)
            cap = SN_MEMBERS_FORGOTTEN_MAX;
        forgotten *g = realloc(ms->gone, cap * sizeof *g);
        if (!g)
            return; /* not remembered: that old incarnation could greet again */
        ms->gone = g;
        ms->gone_cap = cap;
    }
    snprintf(ms->gone[at].name, sizeof ms->gone->name, "%s", m->name);
    ms->gone[at].inc = m->inc;
    if (at == ms->ngone)
        ms->ngone++;
}

sn_member *sn_members_add(sn_members *ms, const char *name, const char *endpoint,
                          const char *http, uint64_t inc, double now, sn_member_change *change,
                          uint64_t *old_inc)
{
    *change = SN_MEMBER_REFUSED;
    *old_inc = 0;
    if (strcmp(name, ms->self) == 0 || !*endpoint || sn_members_forgotten(ms, name, inc))
        return NULL;
    sn_member *m = sn_members_find(ms, name);
    if (m && m->inc == inc) {
        *change = SN_MEMBER_SAME;
        return m;
    }
    if (m && m->inc > inc)
        return NULL; /* a stale frame of an older process */
    pthread_mutex_lock(&ms->mu);
    if (m) { /* a new incarnation: a restarted process; the old one is gone */
        sn_log_write(ms->log, SN_LOG_INFO, "cluster", "member %s restarted (incarnation %llu)",
                     name, (unsigned long long)inc);
        *old_inc = m->inc;
        *change = SN_MEMBER_RESTARTED;
        m->inc = inc;
        m->seq_in = 0;
        m->seq_in_inc = inc;
        m->seq_out = 0; /* both directions start again, so gaps mean loss */
        m->state = SN_MEMBER_ALIVE;
        m->state_at = now;
        m->registry_version = 0;
        m->nstages = 0;
        free(m->stages);
        m->stages = NULL;
        snprintf(m->endpoint, sizeof m->endpoint, "%s", endpoint);
    } else if ((m = calloc(1, sizeof *m))) {
        *change = SN_MEMBER_NEW;
        snprintf(m->name, sizeof m->name, "%s", name);
        snprintf(m->endpoint, sizeof m->endpoint, "%s", endpoint);
        m->inc = inc;
        m->seq_in_inc = inc;
        m->state_at = now;
        m->next = ms->list;
        ms->list = m;
        ms->n++;
        sn_log_write(ms->log, SN_LOG_INFO, "cluster", "member %s joined (%s)", name, endpoint);
    }
    if (m) {
        m->last_heard = now;
        snprintf(m->http, sizeof m->http, "%s", http ? http : "");
    }
    pthread_mutex_unlock(&ms->mu);
    return m;
}

int sn_members_set_state(sn_members *ms, sn_member *m, sn_member_state s, double now)
{
    if (m->state == s)
        return 0;
    sn_log_write(ms->log, s == SN_MEMBER_ALIVE ? SN_LOG_INFO : SN_LOG_WARN, "cluster",
                 "member %s: %s -> %s", m->name, state_names[m->state], state_names[s]);
    pthread_mutex_lock(&ms->mu);
    m->state = s;
    m->state_at = now;
    if (s == SN_MEMBER_ALIVE) { /* its registry comes again */
        m->registry_version = 0;
        m->last_heard = now;
    }
    pthread_mutex_unlock(&ms->mu);
    return 1;
}

void sn_members_heard(sn_members *ms, sn_member *m, double now)
{
    pthread_mutex_lock(&ms->mu);
    m->last_heard = now;
    pthread_mutex_unlock(&ms->mu);
    m->probe_at = 0;
}

int sn_members_choose(sn_members *ms, size_t k)
{
    size_t live = 0;
    for (sn_member *m = ms->list; m; m = m->next)
        live += m->state != SN_MEMBER_LEFT;
    ms->probing = sn_members_probes(ms, k);
    size_t i = 0, from = live ? ms->cursor % live : 0;
    for (sn_member *m = ms->list; m; m = m->next) {
        if (m->state == SN_MEMBER_LEFT) {
            m->target = 0;
            continue;
        }
        size_t turn = (i + live - from) % live; /* 0 for the member at the cursor */
        m->target = !ms->probing || turn < k || m->state == SN_MEMBER_SUSPECT;
        i++;
    }
    if (ms->probing)
        ms->cursor = from + k;
    return ms->probing;
}

int sn_members_probing(const sn_members *ms)
{
    return ms->probing;
}

int sn_members_probes(const sn_members *ms, size_t k)
{
    size_t live = 0;
    for (const sn_member *m = ms->list; m; m = m->next)
        live += m->state != SN_MEMBER_LEFT;
    return k > 0 && live > k;
}

void sn_members_probed(sn_members *ms, sn_member *m, double now)
{
    (void)ms;
    if (!m->probe_at)
        m->probe_at = now;
}

static int rank(sn_member_state s)
{
    return s == SN_MEMBER_ALIVE ? 0 : s == SN_MEMBER_SUSPECT ? 1 : 2;
}

int sn_members_hearsay(sn_members *ms, sn_member *m, sn_member_state st, uint64_t version,
                       double now, sn_member_state *from)
{
    *from = m->state;
    if (m->state == SN_MEMBER_LEFT || st == SN_MEMBER_LEFT || version < m->version)
        return 0;
    int newer = version > m->version;
    if (newer) {
        pthread_mutex_lock(&ms->mu);
        m->version = version;
        pthread_mutex_unlock(&ms->mu);
    }
    if (!ms->probing || st == m->state || (!newer && rank(st) <= rank(m->state)))
        return 0;
    if (st == SN_MEMBER_ALIVE)
        m->probe_at = 0; /* refuted: it starts with a clean slate */
    return sn_members_set_state(ms, m, st, now);
}

void sn_members_check(sn_members *ms, double now, double suspect, double down, double forget,
                      sn_members_change_fn fn, void *ud)
{
    for (sn_member **pp = &ms->list; *pp;) {
        sn_member *m = *pp;
        sn_member_state from = m->state;
        double silent = !ms->probing ? now - m->last_heard : m->probe_at ? now - m->probe_at : 0;
        if (m->state == SN_MEMBER_ALIVE && silent > suspect)
            sn_members_set_state(ms, m, SN_MEMBER_SUSPECT, now);
        if (m->state == SN_MEMBER_SUSPECT && silent > suspect + down)
            sn_members_set_state(ms, m, SN_MEMBER_DOWN, now);
        if ((m->state == SN_MEMBER_DOWN || m->state == SN_MEMBER_LEFT) &&
            now - m->state_at > forget) {
            sn_log_write(ms->log, SN_LOG_INFO, "cluster", "member %s forgotten after %.0f s %s "
                         "(--set forget); incarnation %llu will be refused", m->name,
                         now - m->state_at, state_names[m->state], (unsigned long long)m->inc);
            pthread_mutex_lock(&ms->mu);
            *pp = m->next;
            ms->n--;
            remember_forgotten(ms, m);
            pthread_mutex_unlock(&ms->mu);
            fn(m, from, 1, ud);
            free_member(m);
            continue;
        }
        if (m->state != from)
            fn(m, from, 0, ud);
        pp = &m->next;
    }
}

sn_wire_member *sn_members_wire_list(sn_members *ms, const sn_wire_member *self, uint32_t *n)
{
    sn_wire_member *v = calloc(ms->n + 1, sizeof *v);
    if (!v) {
        *n = 0;
        return NULL;
    }
    v[0] = *self;
    uint32_t i = 1;
    for (sn_member *m = ms->list; m; m = m->next)
        v[i++] = (sn_wire_member){.name = m->name, .endpoint = m->endpoint, .http = m->http,
                                  .incarnation = m->inc, .state = (sn_wire_state)m->state,
                                  .version = m->version};
    *n = i;
    return v;
}

/* From the basis the digest always used, so nodes of earlier builds agree on it. */
static uint64_t name_hash(const char *s)
{
    return sn_map_hash_more(SN_MAP_HASH_PLACEMENT, s, strlen(s));
}

static uint64_t member_term(const char *name, uint64_t inc, sn_member_state st, uint64_t version)
{
    return (name_hash(name) + inc * 31 + (uint64_t)st + (version << 2)) * 0x9E3779B97F4A7C15ull;
}

uint64_t sn_members_digest(sn_members *ms, uint64_t self_inc, uint64_t self_version)
{
    /* the same for every node with the same view: this node counts as an alive member */
    uint64_t d = member_term(ms->self, self_inc, SN_MEMBER_ALIVE, self_version);
    for (sn_member *m = ms->list; m; m = m->next)
        d ^= member_term(m->name, m->inc, m->state, m->version);
    return d;
}

void sn_members_counts(sn_members *ms, size_t counts[4])
{
    memset(counts, 0, 4 * sizeof *counts);
    pthread_mutex_lock(&ms->mu);
    for (sn_member *m = ms->list; m; m = m->next)
        counts[m->state]++;
    pthread_mutex_unlock(&ms->mu);
}

size_t sn_members_count(sn_members *ms)
{
    pthread_mutex_lock(&ms->mu);
    size_t n = ms->n;
    pthread_mutex_unlock(&ms->mu);
    return n;
}

size_t sn_members_view(sn_members *ms, double now, sn_member_view **out)
{
    pthread_mutex_lock(&ms->mu);
    size_t n = ms->n, i = 0;
    sn_member_view *v = calloc(n ? n : 1, sizeof *v);
    for (sn_member *m = ms->list; v && m; m = m->next, i++) {
        v[i] = (sn_member_view){.name = strdup(m->name),
                                .endpoint = strdup(m->endpoint),
                                .http = m->http[0] ? strdup(m->http) : NULL,
                                .state = state_names[m->state],
                                .incarnation = m->inc,
                                .last_seen_s = now - m->last_heard};
        if (m->status_json && (m->state == SN_MEMBER_ALIVE || m->state == SN_MEMBER_SUSPECT)) {
            if ((v[i].status_json = malloc(m->status_len + 1))) {
                memcpy(v[i].status_json, m->status_json, m->status_len + 1);
                v[i].status_len = m->status_len;
            }
            v[i].status_age_s = now - m->status_at;
        } else if (m->state == SN_MEMBER_DOWN || m->state == SN_MEMBER_LEFT) {
            v[i].error = m->state == SN_MEMBER_DOWN ? "node is down" : "node left";
        }
    }
    pthread_mutex_unlock(&ms->mu);
    *out = v;
    return v ? n : 0;
}

void sn_members_view_free(sn_member_view *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].endpoint);
        free(v[i].http);
        free(v[i].status_json);
    }
    free(v);
}

void sn_members_set_status(sn_members *ms, sn_member *m, const void *json, size_t len,
                           double now)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* the view shows the last one */
    memcpy(copy, json, len);
    copy[len] = '\0';
    pthread_mutex_lock(&ms->mu);
    free(m->status_json);
    m->status_json = copy;
    m->status_len = len;
    m->status_at = now;
    pthread_mutex_unlock(&ms->mu);
}
