/* sn_builtin: the home of a built-in stage is chosen by rendezvous hashing, so that every
 * node picks the same one without asking; a home already running wins over the hash of all
 * members, so that a node joining does not move the data of a running home. Frames from
 * other nodes for a stage not yet started wait in a queue while a thread of its own starts
 * it, so the loop thread never makes a Lua state nor waits for one. */
#include "sn_builtin.h"
#include "sn_error.h"
#include "sn_log.h"
#include "sn_map.h"
#include "sn_router.h"

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    HOMES_MAX = 64,       /* nodes running one built-in stage that the home is chosen among */
    STAGES = 3,           /* index, route, ticket */
    PENDING_MAX = 100000, /* frames held per stage while it starts (--set builtin.pending) */
    START_WAIT_MS = 1000, /* a worker's wait for another thread's start of the same stage */
    HELD_WAIT_MS = 30000, /* the held frames' wait for it, then they are dropped (logged) */
    STARTING = -1,        /* start_once: another thread is making the state (not an SN_ code) */
};

static const char *const names[STAGES] = {"index", "route", "ticket"};

static int slot_of(const char *stage)
{
    for (int i = 0; stage && i < STAGES; i++)
        if (strcmp(stage, names[i]) == 0)
            return i;
    return -1;
}

long sn_builtin_setting(sn_node *n, const char *key, long def)
{
    const sn_opts *o = sn_node_opts(n);
    size_t len = strlen(key);
    for (int i = o->builtin.n - 1; i >= 0; i--) { /* the last one given wins */
        const char *v = o->builtin.item[i];
        if (strncmp(v, key, len) == 0 && v[len] == '=')
            return strtol(v + len + 1, NULL, 10);
    }
    return def;
}

int sn_builtin_is(const char *stage)
{
    return slot_of(stage) >= 0;
}

/* Is b ranked before a? Higher hash first, ties by name. */
static int better(const char *stage, const char *b, const char *a)
{
    uint64_t x = sn_map_rendezvous(stage, b), y = sn_map_rendezvous(stage, a);
    return x > y || (x == y && strcmp(b, a) < 0);
}

int sn_builtin_home(sn_node *n, const char *stage, char *home, size_t cap, int *hashed)
{
    *hashed = 0;
    sn_router *r = sn_node_router(n);
    const char *self = sn_node_name(n);
    char nodes[HOMES_MAX][SN_ROUTER_NODE_MAX]; /* 8 KiB */
    size_t nn = sn_router_nodes(r, stage, nodes, NULL, HOMES_MAX);
    const char *best = sn_router_count(r, stage) ? self : NULL;
    for (size_t i = 0; i < nn && i < HOMES_MAX; i++)
        if (!best || better(stage, nodes[i], best))
            best = nodes[i];
    if (best) {
        if (best == self)
            return 0;
        snprintf(home, cap, "%s", best);
        return 1;
    }
    char key[300];
    snprintf(key, sizeof key, "builtin:%s", stage);
    *hashed = 1;
    return sn_node_home(n, key, home, cap);
}

/* Does stage run here, its start message queued? The router shows a new actor just before
 * its start message is posted (sn_node_spawn), and a message posted in between would reach
 * it before its handlers exist ("no handler"): the start is the first message its mailbox
 * ever held, so a peak of 1 says it is there. */
static int up(sn_node *n, const char *stage)
{
    uint64_t id = 0;
    size_t len = 0, peak = 0;
    return sn_router_all(sn_node_router(n), stage, &id, 1) == 1 &&
           sn_node_mailbox(n, id, &len, &peak) == SN_OK && peak >= 1;
}

/* 1 with path filled when built-in stage has its file, else 0 (then it is routed like any
 * stage). */
static int stage_file(sn_node *n, const char *stage, char *path, size_t cap)
{
    const char *dir = sn_node_opts(n)->preload;
    snprintf(path, cap, "%s/builtin/%s.stage", dir ? dir : "preload", stage);
    return access(path, R_OK) == 0;
}

/* Spawns stage unless it runs; the node-wide once key is held only while one caller spawns
 * (a lock that never blocks): a home that dies leaves the router, so the next caller finds
 * the key free and starts a fresh one. SN_OK, STARTING when another thread is spawning it,
 * or the spawn's error (logged; the next use tries again). */
static int start_once(sn_node *n, const char *stage, const char *path)
{
    char key[300], ran[300];
    snprintf(key, sizeof key, "stage-node:builtin:%s", stage);
    snprintf(ran, sizeof ran, "stage-node:builtin:%s:ran", stage);
    int first = 0, again = 0;
    int rc = sn_node_once(n, key, 0, &first);
    if (rc != SN_OK)
        return rc;
    if (!first)
        return up(n, stage) ? SN_OK : STARTING;
    uint64_t id = 0;
    rc = up(n, stage) ? SN_OK : sn_node_spawn(n, stage, path, NULL, 0, &id);
    if (rc == SN_OK && id && sn_node_once(n, ran, 0, &first) == SN_OK)
        again = !first;
    sn_node_once(n, key, 1, &first); /* spawned (or failed): the next start may go */
    if (rc != SN_OK) {
        sn_log_write(sn_node_log(n), SN_LOG_ERROR, NULL, "built-in stage '%s' not started: %s",
                     stage, sn_strerror(rc));
        return rc;
    }
    if (id)
        sn_log_write(sn_node_log(n), SN_LOG_INFO, NULL, "built-in stage '%s' %s: this node is "
                     "its home (actor %llu)", stage,
                     again ? "started again, its previous home here is gone" : "started",
                     (unsigned long long)id);
    return SN_OK;
}

/* sn_builtin_start, waiting at most wait_ms for another thread's start. */
static int start_wait(sn_node *n, const char *stage, int wait_ms)
{
    if (!sn_builtin_is(stage))
        return SN_ENOENT;
    if (up(n, stage))
        return SN_OK;
    char path[4096];
    if (!stage_file(n, stage, path, sizeof path))
        return SN_ENOENT;
    int rc = start_once(n, stage, path);
    for (int i = 0; rc == STARTING && i < wait_ms; i++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        rc = up(n, stage) ? SN_OK : start_once(n, stage, path);
    }
    return rc == STARTING ? SN_ETIMEDOUT : rc;
}

int sn_builtin_start(sn_node *n, const char *stage)
{
    /* Another thread is making the state: this caller is a worker (the loop thread goes
     * through sn_builtin_deliver, which never waits), so it may wait, bounded. */
    return start_wait(n, stage, START_WAIT_MS);
}

/* ---- frames from other nodes, on the loop thread ---- */

typedef struct held {
    struct held *next;
    sn_wire_message m; /* its strings and payload point into the same allocation */
    int trusted;
} held;

typedef struct slot {
    held *head, *tail;
    size_t n;
    int starting;      /* a start thread runs (or ran and was not joined yet) */
    _Atomic int done;  /* it finished; rc is its result */
    int rc;
    int full_logged;
    pthread_t thread;
    sn_builtin *b;
    char path[4096];
} slot;

struct sn_builtin {
    sn_node *node;
    struct ev_loop *loop;
    ev_timer check; /* runs while frames are held: delivers them once their stage is up */
    size_t pending_max;
    slot slots[STAGES];
};

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 1;
}

static char *put_str(char **at, const char *s)
{
    char *out = *at;
    size_t len = str_size(s);
    memcpy(out, s ? s : "", len);
    *at += len;
    return out;
}

/* A deep copy of m in one allocation (caller frees), or NULL when out of memory. */
static held *hold(const sn_wire_message *m, int trusted)
{
    size_t size = sizeof(held) + str_size(m->src.node) + str_size(m->src.stage) +
                  str_size(m->dst.node) + str_size(m->dst.stage) + str_size(m->msg_id) +
                  str_size(m->reply_id) + m->payload.len;
    held *h = malloc(size);
    if (!h)
        return NULL;
    h->next = NULL;
    h->trusted = trusted;
    h->m = *m;
    char *at = (char *)(h + 1);
    h->m.src.node = put_str(&at, m->src.node);
    h->m.src.stage = put_str(&at, m->src.stage);
    h->m.dst.node = put_str(&at, m->dst.node);
    h->m.dst.stage = put_str(&at, m->dst.stage);
    h->m.msg_id = put_str(&at, m->msg_id);
    h->m.reply_id = put_str(&at, m->reply_id);
    if (m->payload.len)
        memcpy(at, m->payload.data, m->payload.len);
    h->m.payload.data = at;
    return h;
}

static void *start_thread(void *arg)
{
    slot *s = arg;
    int i = (int)(s - s->b->slots);
    s->rc = start_wait(s->b->node, names[i], HELD_WAIT_MS); /* its own thread: it may wait */
    atomic_store(&s->done, 1);
    return NULL;
}

/* Delivers what slot i holds once its stage runs; drops it (logged) when the start failed. */
static void drain(sn_builtin *b, int i)
{
    slot *s = &b->slots[i];
    if (!s->head)
        return;
    int running = up(b->node, names[i]);
    if (!running && !atomic_load(&s->done))
        return;
    size_t lost = 0;
    for (held *h = s->head, *next; h; h = next) {
        next = h->next;
        if (!running || sn_node_deliver(b->node, &h->m, h->trusted) != SN_OK)
            lost++;
        free(h);
    }
    if (lost)
        sn_log_write(sn_node_log(b->node), SN_LOG_ERROR, NULL, "built-in stage '%s': %zu "
                     "message(s) from other nodes dropped: %s", names[i], lost,
                     running ? "not delivered"
                     : s->rc == SN_OK ? "its home stopped before they reached it"
                                      : sn_strerror(s->rc));
    s->head = s->tail = NULL;
    s->n = 0;
    s->full_logged = 0;
}

static void reap(slot *s)
{
    if (s->starting && atomic_load(&s->done)) {
        pthread_join(s->thread, NULL);
        s->starting = 0;
    }
}

static void on_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sn_builtin *b = w->data;
    int held_any = 0;
    for (int i = 0; i < STAGES; i++) {
        drain(b, i);
        if (!b->slots[i].head)
            reap(&b->slots[i]);
        held_any |= b->slots[i].head != NULL;
    }
    if (!held_any)
        ev_timer_stop(b->loop, &b->check);
}

sn_builtin *sn_builtin_new(sn_node *n, struct ev_loop *loop)
{
    sn_builtin *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->node = n;
    b->loop = loop;
    b->pending_max = (size_t)sn_builtin_setting(n, "builtin.pending", PENDING_MAX);
    ev_timer_init(&b->check, on_check, 0.001, 0.001);
    b->check.data = b;
    for (int i = 0; i < STAGES; i++)
        b->slots[i].b = b;
    return b;
}

void sn_builtin_destroy(sn_builtin **bp)
{
    if (!bp || !*bp)
        return;
    sn_builtin *b = *bp;
    ev_timer_stop(b->loop, &b->check);
    for (int i = 0; i < STAGES; i++) {
        slot *s = &b->slots[i];
        if (s->starting)
            pthread_join(s->thread, NULL);
        for (held *h = s->head, *next; h; h = next) {
            next = h->next;
            free(h);
        }
    }
    free(b);
    *bp = NULL;
}

int sn_builtin_deliver(sn_builtin *b, const sn_wire_message *m, int trusted)
{
    int i = slot_of(m->dst.stage);
    if (i < 0)
        return sn_node_deliver(b->node, m, trusted);
    slot *s = &b->slots[i];
    drain(b, i);
    if (!s->head) {
        if (up(b->node, names[i]))
            return sn_node_deliver(b->node, m, trusted);
        reap(s);
        if (!s->starting) {
            if (!stage_file(b->node, names[i], s->path, sizeof s->path))
                return sn_node_deliver(b->node, m, trusted); /* routed like any stage */
            atomic_store(&s->done, 0);
            if (pthread_create(&s->thread, NULL, start_thread, s) != 0)
                return SN_ENOMEM;
            s->starting = 1;
        }
    }
    if (s->n >= b->pending_max) {
        if (!s->full_logged)
            sn_log_write(sn_node_log(b->node), SN_LOG_WARN, NULL, "built-in stage '%s' is "
                         "starting and holds %zu messages already (limit: --set "
                         "builtin.pending): more are refused as 'mailbox full'", names[i],
                         b->pending_max);
        s->full_logged = 1;
        return SN_EFULL;
    }
    held *h = hold(m, trusted);
    if (!h)
        return SN_ENOMEM;
    if (s->tail)
        s->tail->next = h;
    else
        s->head = h;
    s->tail = h;
    s->n++;
    if (!ev_is_active(&b->check))
        ev_timer_start(b->loop, &b->check);
    return SN_OK;
}
