/* sn_once: the node's set of keys seen by stage.once. Thread-safe. */
#ifndef SN_ONCE_H
#define SN_ONCE_H

typedef struct sn_once sn_once;

enum { SN_ONCE_MAX_KEYS = 1000000 };

/* sn_once_new: an empty set; NULL on out of memory. */
sn_once *sn_once_new(void);
/* sn_once_destroy: frees it; NULL is fine; nulls *op. */
void sn_once_destroy(sn_once **op);

/* sn_once_first: 1 when key was not in the set (it is now), 0 when it was. SN_ENOMEM or
 * SN_ELIMIT (negated) when it cannot be recorded. */
int sn_once_first(sn_once *o, const char *key);
/* sn_once_forget: removes key (nothing when absent). */
void sn_once_forget(sn_once *o, const char *key);

#endif
