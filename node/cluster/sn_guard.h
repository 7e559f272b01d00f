/* sn_guard: the checks a frame from the network passes before it is handled: its claimed
 * source node against the node its connection is authenticated as, and the counting and
 * rate-limited logging of every frame refused (docs/security.md). Loop thread; counts may be
 * read from any thread. */
#ifndef SN_GUARD_H
#define SN_GUARD_H

#include "sn_log.h"
#include "sn_members.h"
#include "sn_transport.h"
#include "sn_wire.h"

#include <stdint.h>

enum { SN_GUARD_LOGS_PER_SECOND = 10 /* refusal lines a second; the rest are summarised */ };

/* Why a frame was refused: the reason label of stage_wire_refused_total. */
typedef enum sn_guard_reason {
    SN_GUARD_MALFORMED, /* did not decode */
    SN_GUARD_IDENTITY,  /* claims another source than its connection's authenticated node */
    SN_GUARD_DUPLICATE, /* a sequence number seen already */
    SN_GUARD_LOCK,      /* a lock frame for nobody, or a grant from another node than the home */
    SN_GUARD_MEMBERS,   /* a member over the limit of members, or without a key */
    SN_GUARD_HELLO,     /* a HELLO of another cluster, of our own name, or forgotten */
    SN_GUARD_REASONS
} sn_guard_reason;

typedef struct sn_guard sn_guard;

/* sn_guard_new: NULL on out of memory. log is borrowed. */
sn_guard *sn_guard_new(sn_log *log);
/* sn_guard_destroy: logs what is still suppressed; NULL is fine; nulls *gp. */
void sn_guard_destroy(sn_guard **gp);

/* sn_guard_claimed: the node f says it comes from, or NULL when its kind names none (ERROR,
 * CODE_MISS, LOCK_GRANT and LOCK_DENY: those are checked where they are handled). Pure. */
const char *sn_guard_claimed(const sn_wire_frame *f);
/* sn_guard_check: 1 when f may be handled: it came unauthenticated (peer NULL: no CURVE, its
 * claims cannot be checked and it carries data only), or its claimed source is peer. Else 0,
 * counted and logged (rate-limited) as SN_GUARD_IDENTITY. */
int sn_guard_check(sn_guard *g, const sn_wire_frame *f, const char *peer);
/* sn_guard_refused: counts a refusal for reason and logs the line at warn, at most
 * SN_GUARD_LOGS_PER_SECOND a second (then "N more refused frames not logged"). */
__attribute__((format(printf, 3, 4))) void sn_guard_refused(sn_guard *g, sn_guard_reason why,
                                                            const char *fmt, ...);
/* sn_guard_admit_member: 1 if node name may become a member: it is one already, or there are
 * fewer than max members (max / 2 for a member only heard of in gossip, so that invented
 * names never crowd out a node that greets us itself) and t could authenticate it (with
 * CurveZMQ: its name has a key). Else 0, counted and logged as SN_GUARD_MEMBERS. Loop thread. */
int sn_guard_admit_member(sn_guard *g, sn_members *ms, sn_transport *t, const char *name,
                          size_t max, int hearsay);
/* sn_guard_log: the same line, rate-limited with the refusals, without counting one (what
 * a peer can make this node log: an ERROR it sends, a lock it floods). */
__attribute__((format(printf, 2, 3))) void sn_guard_log(sn_guard *g, const char *fmt, ...);
/* sn_guard_seed: a --join item's endpoint and the node expected there: NAME@HOST:PORT, or
 * HOST:PORT with the node named by HOST's first DNS label (with CurveZMQ, the name whose key
 * the seed must hold); an endpoint ("fake://x") is taken as it is. Pure. */
void sn_guard_seed(const char *item, char *endpoint, size_t ecap, char *name, size_t ncap);
/* sn_guard_count: refusals for reason so far. Any thread. */
uint64_t sn_guard_count(const sn_guard *g, sn_guard_reason why);
/* sn_guard_reason_name: "malformed", "identity", ... for the metric's label. Static. */
const char *sn_guard_reason_name(sn_guard_reason why);

#endif
