/* sn_sessions: requests sent to other nodes that wait for a reply (by session number), and
 * their end: answered, failed because the node went down or restarted, or timed out.
 * Thread-safe (its own mutex, never held across network I/O). */
#ifndef SN_SESSIONS_H
#define SN_SESSIONS_H

#include "sn_router.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sn_session {
    struct sn_session *next;
    uint64_t id;
    uint64_t actor;                /* the requester */
    char rid[256];                 /* its reply handler */
    char node[SN_ROUTER_NODE_MAX]; /* asked node */
    uint64_t inc;                  /* at this incarnation */
    double deadline;               /* monotonic seconds */
    int many;                      /* a broadcast: every actor there answers, until deadline */
    int answered;                  /* answers a broadcast got */
} sn_session;

typedef struct sn_sessions sn_sessions;

/* sn_sessions_new / _destroy: an empty set; destroy frees what is left, takes NULL, nulls. */
sn_sessions *sn_sessions_new(void);
void sn_sessions_destroy(sn_sessions **sp);

/* sn_sessions_add: a request of actor (reply handler rid) to node at inc, due at deadline.
 * The new session number (never 0), or 0 on out of memory. Any thread. */
uint64_t sn_sessions_add(sn_sessions *s, uint64_t actor, const char *rid, const char *node,
                         uint64_t inc, double deadline, int many);
/* sn_sessions_answer: a reply for id came: 1 with *out a copy (removed unless many; a many
 * session counts the answer), 0 when it is not pending (timed out, or never ours). */
int sn_sessions_answer(sn_sessions *s, uint64_t id, sn_session *out);
/* sn_sessions_take: removes id: 1 with *out a copy, 0 when not pending. */
int sn_sessions_take(sn_sessions *s, uint64_t id, sn_session *out);
/* sn_sessions_take_node: removes every session of node (at inc, or any incarnation when inc is
 * 0; with skip_inc set, every one NOT at inc): a list the caller frees with
 * sn_sessions_free_list. */
sn_session *sn_sessions_take_node(sn_sessions *s, const char *node, uint64_t inc, int skip_inc);
/* sn_sessions_take_due: removes every session due by now (a list, as above). */
sn_session *sn_sessions_take_due(sn_sessions *s, double now);
/* sn_sessions_free_list: frees a list taken above; NULL is fine. */
void sn_sessions_free_list(sn_session *list);
/* sn_sessions_count: how many are pending. */
size_t sn_sessions_count(sn_sessions *s);

#endif
