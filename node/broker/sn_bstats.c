/* sn_bstats: the broker's counts as the views read them (dashboard, /status.json, `stage-node
 * status`): per listener, from its atomics and under the broker's mutex; any thread. */
#include "sn_bconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *reasons[SN_BCLOSE_N] = {
    "peer", "local", "error", "oversize", "protocol", "utf8", "handshake", "idle",
    "slow consumer", "owner gone", "limit", "shutdown", "decode", "tls"};

const char *sn_broker_reason_name(int r)
{
    return r >= 0 && r < SN_BCLOSE_N ? reasons[r] : "?";
}

static void stats_of(const blistener *l, sn_broker_stats *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->uri, sizeof s->uri, "%s", l->uri);
    s->id = l->id;
    s->actor = l->actor;
    s->open = atomic_load(&l->open);
    s->accepted = atomic_load(&l->accepted);
    s->bytes_in = atomic_load(&l->bytes_in);
    s->bytes_out = atomic_load(&l->bytes_out);
    s->frames_in = atomic_load(&l->frames_in);
    s->frames_out = atomic_load(&l->frames_out);
    s->queued_out = atomic_load(&l->queued_out);
    s->paused = atomic_load(&l->paused);
    for (int i = 0; i < SN_BCLOSE_N; i++)
        s->closed[i] = atomic_load(&l->closed_n[i]);
}

size_t sn_broker_stats_get(sn_broker *b, sn_broker_stats **v)
{
    pthread_mutex_lock(&b->mu);
    size_t n = 1;
    for (blistener *l = b->listeners; l; l = l->next)
        n++;
    *v = calloc(n, sizeof **v);
    if (!*v) {
        pthread_mutex_unlock(&b->mu);
        return 0;
    }
    size_t i = 0;
    for (blistener *l = b->listeners; l; l = l->next)
        stats_of(l, &(*v)[n - 2 - i++]); /* oldest first */
    stats_of(&b->joins, &(*v)[n - 1]);
    pthread_mutex_unlock(&b->mu);
    return n;
}

size_t sn_broker_open_total(sn_broker *b)
{
    return atomic_load(&b->open);
}
