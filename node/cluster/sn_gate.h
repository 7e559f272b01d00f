/* sn_gate: the checks a frame from the network passes before it is handled: its claimed
 * source node against the node its connection is authenticated as, and the counting and
 * rate-limited logging of every frame refused (docs/security.md). Loop thread; counts may be
 * read from any thread. */
#ifndef SN_GATE_H
#define SN_GATE_H

#include "sn_log.h"
#include "sn_members.h"
#include "sn_transport.h"
#include "sn_wire.h"

#include <stdint.h>

enum { SN_GATE_LOGS_PER_SECOND = 10 /* refusal lines a second; the rest are summarised */ };

/* Why a frame was refused: the reason label of stage_wire_refused_total. */
typedef enum sn_gate_reason {
    SN_GATE_MALFORMED, /* did not decode */
    SN_GATE_IDENTITY,  /* claims another source than its connection's authenticated node */
    SN_GATE_DUPLICATE, /* a sequence number seen already */
    SN_GATE_LOCK,      /* a lock frame for nobody, or a grant from another node than the home */
    SN_GATE_MEMBERS,   /* a member over the limit of members, or without a key */
    SN_GATE_HELLO,     /* a HELLO of another cluster, of our own name, or forgotten */
    SN_GATE_REASONS
} sn_gate_reason;

typedef struct sn_gate sn_gate;

/* sn_gate_new: NULL on out of memory. log is borrowed. */
sn_gate *sn_gate_new(sn_log *log);
/* sn_gate_destroy: logs what is still suppressed; NULL is fine; nulls *gp. */
void sn_gate_destroy(sn_gate **gp);

/* sn_gate_claimed: the node f says it comes from, or NULL when its kind names none (ERROR,
 * CODE_MISS, LOCK_GRANT and LOCK_DENY: those are checked where they are handled). Pure. */
const char *sn_gate_claimed(const sn_wire_frame *f);
/* sn_gate_check: 1 when f may be handled: it came unauthenticated (peer NULL: no CURVE, its
 * claims cannot be checked and it carries data only), or its claimed source is peer. Else 0,
 * counted and logged (rate-limited) as SN_GATE_IDENTITY. */
int sn_gate_check(sn_gate *g, const sn_wire_frame *f, const char *peer);
/* sn_gate_batched: 1 when f may travel inside a BATCH (MESSAGE, REPLY, LOCK_*: the frames of
 * the data connection), else 0, counted and logged (rate-limited) as SN_GATE_MALFORMED. */
int sn_gate_batched(sn_gate *g, const sn_wire_frame *f, const char *peer);
/* sn_gate_refused: counts a refusal for reason and logs the line at warn, at most
 * SN_GATE_LOGS_PER_SECOND a second (then "N more refused frames not logged"). */
__attribute__((format(printf, 3, 4))) void sn_gate_refused(sn_gate *g, sn_gate_reason why,
                                                            const char *fmt, ...);
/* sn_gate_admit_member: 1 if node name may become a member: it is one already, or there are
 * fewer than max members (max / 2 for a member only heard of in gossip, so that invented
 * names never crowd out a node that greets us itself) and t could authenticate it (with
 * CurveZMQ: its name has a key). Else 0, counted and logged as SN_GATE_MEMBERS. Loop thread. */
int sn_gate_admit_member(sn_gate *g, sn_members *ms, sn_transport *t, const char *name,
                          size_t max, int hearsay);
/* sn_gate_log: the same line, rate-limited with the refusals, without counting one (what
 * a peer can make this node log: an ERROR it sends, a lock it floods). */
__attribute__((format(printf, 2, 3))) void sn_gate_log(sn_gate *g, const char *fmt, ...);
/* sn_gate_seed: a --join item's endpoint and the node expected there: NAME@HOST:PORT, or
 * HOST:PORT with the node named by HOST's first DNS label (with CurveZMQ, the name whose key
 * the seed must hold); an endpoint ("fake://x") is taken as it is. Pure. */
void sn_gate_seed(const char *item, char *endpoint, size_t ecap, char *name, size_t ncap);
/* sn_gate_count: refusals for reason so far. Any thread. */
uint64_t sn_gate_count(const sn_gate *g, sn_gate_reason why);
/* sn_gate_reason_name: "malformed", "identity", ... for the metric's label. Static. */
const char *sn_gate_reason_name(sn_gate_reason why);

#endif
