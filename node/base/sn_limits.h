/* sn_limits: each actor's governor settings (CPU budget per message, memory warning and
 * cap, mailbox capacity in messages and bytes, restart policy): defaults, then "--stage *:..." for every stage,
 * then "--stage SID:..." for one. */
#ifndef SN_LIMITS_H
#define SN_LIMITS_H

#include <stddef.h>

typedef enum sn_restart { SN_RESTART_NEVER = 0, SN_RESTART_ALWAYS } sn_restart;

typedef struct sn_limits {
    double budget;      /* CPU seconds per message (handler, timer, job, chunk); 0: no limit */
    size_t memory_warn; /* bytes of Lua memory at which a warning is logged; 0: never */
    size_t memory_cap;  /* bytes beyond which allocation fails (a Lua memory error); 0: none */
    size_t mailbox;     /* messages a mailbox holds */
    size_t mailbox_bytes; /* bytes its queued messages may hold (they also count toward
                           * memory_cap, with the Lua heap) */
    sn_restart restart; /* when the top-level chunk fails */
    int intensity;      /* at most this many restarts ... */
    double period;      /* ... within this many seconds, then give up */
} sn_limits;

/* The defaults of docs/governor.md. */
#define SN_LIMITS_DEFAULT                                                                     \
    ((sn_limits){.budget = 5.0, .memory_warn = 32u << 20, .memory_cap = 64u << 20,           \
                 .mailbox = 65536, .mailbox_bytes = 64u << 20,                             \
                 .restart = SN_RESTART_NEVER, .intensity = 3, .period = 5.0})

typedef struct sn_limits_table sn_limits_table;

/* sn_limits_check: checks one --stage value "SID:key=value[,key=value...]" (SID may be *).
 * Keys: budget (seconds), memory_warn, memory (bytes; K, M, G suffixes), mailbox,
 * mailbox_bytes (bytes), restart (never|always), intensity, period (seconds); numbers must
 * be finite and not negative. SN_OK, or SN_EINVAL with a message. */
int sn_limits_check(const char *spec, char *err, size_t errlen);

/* sn_limits_new: the table for the --stage values specs[0..n) (already checked). NULL on
 * out of memory. */
sn_limits_table *sn_limits_new(const char *const *specs, int n);
/* sn_limits_destroy: frees it; NULL is fine; nulls *tp. */
void sn_limits_destroy(sn_limits_table **tp);
/* sn_limits_of: the settings of stage (defaults, then *, then its own). Any thread. */
sn_limits sn_limits_of(const sn_limits_table *t, const char *stage);

#endif
