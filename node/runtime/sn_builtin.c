/* sn_builtin: the home of a built-in stage is chosen by rendezvous hashing, so that every
 * node picks the same one without asking; a home already running wins over the hash of all
 * members, so that a node joining does not move the data of a running home. */
#include "sn_builtin.h"
#include "sn_error.h"
#include "sn_log.h"
#include "sn_router.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { HOMES_MAX = 64 }; /* nodes running one built-in stage that the home is chosen among */

int sn_builtin_is(const char *stage)
{
    return stage && (strcmp(stage, "index") == 0 || strcmp(stage, "route") == 0 ||
                     strcmp(stage, "ticket") == 0);
}

static uint64_t rendezvous(const char *stage, const char *node)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over stage, a separator, node */
    for (const char *s = stage; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = node; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

/* Is b ranked before a? Higher hash first, ties by name. */
static int better(const char *stage, const char *b, const char *a)
{
    uint64_t x = rendezvous(stage, b), y = rendezvous(stage, a);
    return x > y || (x == y && strcmp(b, a) < 0);
}

int sn_builtin_home(sn_node *n, const char *stage, char *home, size_t cap)
{
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
    return sn_node_home(n, key, home, cap);
}

int sn_builtin_start(sn_node *n, const char *stage)
{
    if (!sn_builtin_is(stage))
        return SN_ENOENT;
    sn_router *r = sn_node_router(n);
    if (sn_router_count(r, stage))
        return SN_OK;
    char path[4096];
    const char *dir = sn_node_opts(n)->preload;
    snprintf(path, sizeof path, "%s/builtin/%s.stage", dir ? dir : "preload", stage);
    if (access(path, R_OK) != 0)
        return SN_ENOENT;
    /* Two threads may both find none: the node-wide once key picks one to spawn; the other
     * waits (bounded) until the spawn shows in the router, so its message finds it. */
    char key[300];
    snprintf(key, sizeof key, "stage-node:builtin:%s", stage);
    int first = 0;
    int rc = sn_node_once(n, key, 0, &first);
    if (rc != SN_OK)
        return rc;
    if (!first) {
        for (int i = 0; i < 1000 && !sn_router_count(r, stage); i++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        return sn_router_count(r, stage) ? SN_OK : SN_ETIMEDOUT;
    }
    uint64_t id = 0;
    rc = sn_node_spawn(n, stage, path, NULL, 0, &id);
    if (rc != SN_OK) {
        sn_node_once(n, key, 1, &first); /* the next use tries again */
        sn_log_write(sn_node_log(n), SN_LOG_ERROR, NULL, "built-in stage '%s' not started: %s",
                     stage, sn_strerror(rc));
        return rc;
    }
    sn_log_write(sn_node_log(n), SN_LOG_INFO, NULL, "built-in stage '%s' started: this node is "
                 "its home (actor %llu)", stage, (unsigned long long)id);
    return SN_OK;
}
