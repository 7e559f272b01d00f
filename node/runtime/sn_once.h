/* sn_once: the node's set of keys seen by stage.once, bounded by the once_keys setting
 * (--set once_keys=N). Thread-safe. */
#ifndef SN_ONCE_H
#define SN_ONCE_H

#include "sn_log.h"

#include <stddef.h>

typedef struct sn_once sn_once;

enum { SN_ONCE_KEYS_DEFAULT = 1000000 }; /* --set once_keys */

/* sn_once_new: an empty set holding at most max_keys keys (> 0); log (not owned, may be NULL)
 * gets a warning when the limit refuses a key, at most once a minute. NULL on ENOMEM. */
sn_once *sn_once_new(size_t max_keys, sn_log *log);
/* sn_once_destroy: frees it; NULL is fine; nulls *op. */
void sn_once_destroy(sn_once **op);

/* sn_once_first: records key. SN_OK with *first = 1 when key was new (it is in the set now)
 * or 0 when it was there already; SN_ELIMIT when the set holds max_keys keys already, or
 * SN_ENOMEM (key not recorded, *first untouched). Any thread. */
int sn_once_first(sn_once *o, const char *key, int *first);
/* sn_once_forget: removes key (nothing when absent). Any thread. */
void sn_once_forget(sn_once *o, const char *key);
/* sn_once_max_keys: the limit given to sn_once_new. */
size_t sn_once_max_keys(const sn_once *o);

#endif
