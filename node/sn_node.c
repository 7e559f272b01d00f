/* sn_node: owns the libev loop and the actors; decides when a standalone node is done. */
#include "sn_node.h"
#include "sn_actor.h"
#include "sn_error.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sn_node {
    const sn_opts *opts;
    sn_log *log;
    struct ev_loop *loop;
    char name[256];
    double start;
    sn_actor *main; /* the standalone script's actor */
};

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

sn_node *sn_node_new(const sn_opts *o, sn_log *log)
{
    sn_node *n = calloc(1, sizeof *n);
    if (!n) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the node: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    n->opts = o;
    n->log = log;
    n->start = monotonic_now();
    n->loop = ev_loop_new(EVFLAG_AUTO);
    if (!n->loop) {
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the event loop");
        free(n);
        return NULL;
    }
    if (o->name) {
        snprintf(n->name, sizeof n->name, "%s", o->name);
    } else {
        char host[200] = "node";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(n->name, sizeof n->name, "%s-%ld", host, (long)getpid());
    }
    return n;
}

void sn_node_destroy(sn_node **np)
{
    if (!np || !*np)
        return;
    sn_node *n = *np;
    sn_actor_destroy(&n->main);
    if (n->loop)
        ev_loop_destroy(n->loop);
    free(n);
    *np = NULL;
}

int sn_node_run(sn_node *n)
{
    const sn_opts *o = n->opts;
    sn_actor_conf conf = {
        .stage = "main",
        .name = "main",
        .node_name = n->name,
        .preload = o->preload,
        .preload_required = strcmp(o->preload, "preload") != 0,
        .script = o->script,
        .args = o->script_args,
        .nargs = o->script_nargs,
        .start = n->start,
        .log = n->log,
    };
    int err;
    n->main = sn_actor_new(&conf, &err);
    if (!n->main)
        return 1;
    if (sn_actor_run_file(n->main, o->script) != SN_OK)
        return 1;
    /* The exit rule: ev_run returns once no watcher is active, that is when no message is
     * queued, no timer armed, no job running and no listener open. */
    ev_run(n->loop, 0);
    return 0;
}
