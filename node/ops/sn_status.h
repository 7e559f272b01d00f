/* sn_status: the node's status view as JSON (docs/status-json.md): one node's own view, and the
 * cluster document served at /status.json that merges the peers' views gathered by the node. */
#ifndef SN_STATUS_H
#define SN_STATUS_H

#include "sn_broker.h"

#include <stddef.h>
#include <stdint.h>

/* Rendering limits: longer arrays are cut (the JSON says so with a "truncated" count). */
#define SN_STATUS_MAX_ERRORS  20
#define SN_STATUS_MAX_MEMBERS 1024
#define SN_STATUS_MAX_STAGES  4096
/* A peer's view larger than this is reported as an error instead of parsed. */
#define SN_STATUS_MAX_PEER_JSON (4u << 20)

/* The plain data the node fills; every string may be NULL (rendered as ""), none is kept. */
typedef struct sn_status_member {
    const char *name;
    const char *endpoint; /* the cluster (wire) endpoint, "tcp://host:port" */
    const char *http;     /* its HTTP endpoint "host:port", or NULL when it has none */
    const char *state;    /* "alive" | "suspect" | "down" | "left" */
    uint64_t incarnation;
    double last_seen_s; /* seconds since this node last heard from it */
} sn_status_member;

typedef struct sn_status_stage {
    const char *stage; /* the stage id */
    uint64_t actors;   /* actors of that stage on this node */
} sn_status_stage;

typedef struct sn_status_mailbox {
    const char *stage;
    uint64_t depth; /* messages waiting in the stage's mailboxes on this node */
} sn_status_mailbox;

typedef struct sn_status_error {
    double time;       /* wall clock, seconds since the epoch */
    const char *actor; /* "stage/id" or whatever names the culprit */
    const char *text;  /* the message (first line of a traceback is enough) */
} sn_status_error;

typedef struct sn_status_counters {
    uint64_t messages_in, messages_out, messages_dropped, errors, jobs, actors, workers,
        mailbox_depth, lua_memory_bytes, wire_bytes_in, wire_bytes_out, function_cache_hits;
} sn_status_counters;

typedef struct sn_status_view {
    /* this node */
    const char *name, *cluster, *version;
    uint64_t incarnation;
    double uptime_s;
    const char *listen; /* the cluster endpoint it listens on */
    const char *http;   /* its HTTP endpoint */
    double now;         /* wall clock of the view (s since the epoch); 0: taken at render */
    /* what it knows */
    const sn_status_member *members;
    size_t nmembers; /* other nodes (this one is added) */
    const sn_status_stage *stages;
    size_t nstages;
    sn_status_counters counters;
    const sn_status_mailbox *mailboxes;
    size_t nmailboxes;
    const sn_status_error *errors;
    size_t nerrors; /* newest first; the first 20 render */
    const sn_broker_stats *brokers; /* the broker's listeners (and "join"), as "broker" */
    size_t nbrokers;
} sn_status_view;

/* A peer's view as last gathered: its JSON (from its sn_status_render_self) and its age. */
typedef struct sn_status_peer {
    const char *name; /* the member name, the key under "nodes" */
    const char *json; /* may be NULL: not gathered yet */
    size_t len;
    double age_s;      /* seconds since it was gathered */
    const char *error; /* when not NULL, why it could not be gathered (json is ignored) */
} sn_status_peer;

/* sn_status_render_self: one node's view {"node","counters","stages","mailboxes","errors"} as
 * compact JSON; caller owns *json (free()), *len excludes the NUL. SN_ENOMEM. Any thread. */
int sn_status_render_self(const sn_status_view *v, char **json, size_t *len);

/* sn_status_render_cluster: the /status.json document: {"node","cluster","generated_at",
 * "members","nodes"}: members are this node then v->members; nodes holds this node's view and
 * each peer's parsed JSON with its "age_s"; a peer whose JSON is missing, too large, invalid or
 * not an object becomes {"error": "...", "age_s": ...}. Caller owns *json (free()).
 * SN_ENOMEM. Any thread; peer bytes are untrusted and never crash it. */
int sn_status_render_cluster(const sn_status_view *v, const sn_status_peer *peers, size_t npeers,
                             char **json, size_t *len);

#endif
