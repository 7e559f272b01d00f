/* sn_members: the other members of the cluster as this node sees them (endpoint, incarnation,
 * state, when last heard, their connections and per-pair counters), the failure detector that
 * moves them through alive, suspect and down, and the forgetting of long-dead members (with a
 * record of forgotten incarnations, which may never come back).
 * Threads: only the loop thread changes members, always under sn_members_lock; other threads
 * read them under the lock. The loop thread reads without it. */
#ifndef SN_MEMBERS_H
#define SN_MEMBERS_H

#include "sn_log.h"
#include "sn_router.h"
#include "sn_transport.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

typedef enum sn_member_state {
    SN_MEMBER_ALIVE = 0,
    SN_MEMBER_SUSPECT,
    SN_MEMBER_DOWN,
    SN_MEMBER_LEFT
} sn_member_state;

/* sn_member_state_name: "alive", "suspect", "down", "left". */
const char *sn_member_state_name(sn_member_state s);

typedef struct sn_member_stage {
    char stage[256];
    uint32_t count;
} sn_member_stage;

/* One member. The loop thread owns the record; the fields marked (lock) are read by other
 * threads under sn_members_lock. */
typedef struct sn_member {
    struct sn_member *next;
    char name[SN_ROUTER_NODE_MAX]; /* (lock) */
    char endpoint[256];            /* (lock) */
    char http[128];                /* (lock) */
    uint64_t inc;                  /* (lock) */
    sn_member_state state;         /* (lock) */
    double last_heard;             /* (lock) monotonic seconds */
    double state_at;               /* when it entered its state */
    uint64_t version;              /* its state's version (SWIM): higher wins, same incarnation */
    double probe_at;               /* our first probe it has not answered yet, 0 = none */
    int target;                    /* probed in this period */
    sn_conn *data, *ctl;           /* MESSAGE/REPLY/LOCK frames; everything else (sn_peers) */
    int ctl_used;                  /* ctl sent on since the last idle pass (sn_peers) */
    double ctl_at;                 /* the idle pass that last saw ctl used (sn_peers) */
    uint64_t seq_out;              /* per pair: the last sequence number sent to it */
    int batch;                     /* reads BATCH frames: its HELLO or WELCOME said so */
    uint64_t seq_in, seq_in_inc;   /* the last one got from it, and from which incarnation */
    size_t queued;                 /* (lock) MESSAGE frames waiting in the outbox for it */
    sn_member_stage *stages;       /* (lock) its registry as last announced */
    size_t nstages;
    uint64_t registry_version;
    int registry_owed;             /* new or restarted: it needs our registry (sn_registry) */
    char *status_json;             /* (lock) its status view as last gathered */
    size_t status_len;
    double status_at;
} sn_member;

typedef struct sn_members sn_members;

/* sn_member_view: one member as the status view shows it (strings owned by the array). */
typedef struct sn_member_view {
    char *name, *endpoint, *http; /* http NULL when none */
    const char *state;            /* "alive", "suspect", "down", "left" */
    uint64_t incarnation;
    double last_seen_s;
    char *status_json;            /* its status view as last gathered, or NULL */
    size_t status_len;
    double status_age_s;
    const char *error;            /* "node is down", "node left", or NULL */
} sn_member_view;

/* What sn_members_add did. */
typedef enum sn_member_change {
    SN_MEMBER_SAME = 0,    /* known at this incarnation */
    SN_MEMBER_NEW,         /* a new member */
    SN_MEMBER_RESTARTED,   /* a new incarnation: counters reset, state alive */
    SN_MEMBER_REFUSED      /* an incarnation older than known, or forgotten: NULL */
} sn_member_change;

enum { SN_MEMBERS_FORGOTTEN_MAX = 65536 }; /* forgotten incarnations remembered, oldest dropped */

/* sn_members_new: no members yet; self is this node's name (never a member). NULL on ENOMEM. */
sn_members *sn_members_new(const char *self, sn_log *log);
/* sn_members_destroy: frees every record (their connections must be closed by then); NULL is
 * fine; nulls *mp. */
void sn_members_destroy(sn_members **mp);

void sn_members_lock(sn_members *ms);
void sn_members_unlock(sn_members *ms);
/* sn_members_first: the list (loop thread, or under the lock). */
sn_member *sn_members_first(sn_members *ms);
/* sn_members_find: the member called name, or NULL (loop thread, or under the lock). */
sn_member *sn_members_find(sn_members *ms, const char *name);

/* sn_members_add: learns (name, endpoint, inc) at now; *change says what happened. NULL when
 * refused (self, no endpoint, an older or forgotten incarnation) or on ENOMEM. On RESTARTED,
 * *old_inc is the incarnation replaced; the caller renews the connections. Loop thread. */
sn_member *sn_members_add(sn_members *ms, const char *name, const char *endpoint,
                          const char *http, uint64_t inc, double now, sn_member_change *change,
                          uint64_t *old_inc);
/* sn_members_set_state: m enters s at now (logged); 1 when that is a change. Loop thread. */
int sn_members_set_state(sn_members *ms, sn_member *m, sn_member_state s, double now);
/* sn_members_heard: m spoke at now. Loop thread. */
void sn_members_heard(sn_members *ms, sn_member *m, double now);

/* sn_members_set_status: m's status view (JSON, copied) as gathered at now. Loop thread. */
void sn_members_set_status(sn_members *ms, sn_member *m, const void *json, size_t len,
                           double now);

/* What the failure detector does to one member: called with the lock NOT held. When
 * forgotten, m is unlinked already and freed after fn returns (close its connections). */
typedef void (*sn_members_change_fn)(sn_member *m, sn_member_state from, int forgotten,
                                     void *ud);
/* sn_members_check: at now, an alive member silent for more than suspect s becomes suspect,
 * a suspect one silent for suspect + down s becomes down (silent: since it last spoke; while
 * probing, since the first probe it has not answered), and one down (or left) for more
 * than forget s is forgotten: its name and incarnation are refused from then on. Loop thread. */
void sn_members_check(sn_members *ms, double now, double suspect, double down, double forget,
                      sn_members_change_fn fn, void *ud);
/* sn_members_forgotten: 1 when name at inc (or an older incarnation) was forgotten. */
int sn_members_forgotten(sn_members *ms, const char *name, uint64_t inc);

/* sn_members_choose: picks the members to probe in this period (m->target). k == 0, or at
 * most k members not left: every one of them, and 0 is returned (direct detection, as a
 * small cluster always did). Otherwise k of them in turn, plus every suspect one, and 1:
 * probing (SWIM): a member is failed by whoever probes it and the news spreads by gossip.
 * Loop thread. */
int sn_members_choose(sn_members *ms, size_t k);
/* sn_members_probing: what the last sn_members_choose returned. */
int sn_members_probing(const sn_members *ms);
/* sn_members_probes: what sn_members_choose(ms, k) would return now: 1 when k > 0 and more
 * than k members are not left. A node that just joined knows that before its next period. */
int sn_members_probes(const sn_members *ms, size_t k);
/* sn_members_probed: we sent m a heartbeat at now (it should answer). Loop thread. */
void sn_members_probed(sn_members *ms, sn_member *m, double now);
/* sn_members_hearsay: gossip says m (same incarnation) is in state st at version. A higher
 * version wins; at the same version, suspect beats alive and down beats both (SWIM), but
 * only while probing (small clusters trust their own detection). 1 with *from when m's state
 * changed. Loop thread. */
int sn_members_hearsay(sn_members *ms, sn_member *m, sn_member_state st, uint64_t version,
                       double now, sn_member_state *from);

/* sn_members_wire_list: self first, then every member, as wire records in one caller-freed
 * array (strings point into the records: use before the next change). NULL on ENOMEM. */
sn_wire_member *sn_members_wire_list(sn_members *ms, const sn_wire_member *self, uint32_t *n);
/* sn_members_digest: a hash of the view: this node (alive at self_inc, self_version) and every
 * member's name, incarnation, state and version. Nodes that see the same agree on it. */
uint64_t sn_members_digest(sn_members *ms, uint64_t self_inc, uint64_t self_version);
/* sn_members_counts: how many are alive, suspect, down, left. Any thread. */
void sn_members_counts(sn_members *ms, size_t counts[4]);
/* sn_members_view: a copy of every member for the status view at now in *out (caller frees
 * with sn_members_view_free); how many. Any thread. */
size_t sn_members_view(sn_members *ms, double now, sn_member_view **out);
void sn_members_view_free(sn_member_view *v, size_t n);
/* sn_members_count: how many members there are. Any thread. */
size_t sn_members_count(sn_members *ms);

#endif
