/* sn_shared: the node's store of starred (process-wide) variables. Each name holds a
 * versioned snapshot; readers take a reference to the bytes, writers publish new bytes.
 * Thread-safe; variables live as long as the store. */
#ifndef SN_SHARED_H
#define SN_SHARED_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_shared sn_shared;
typedef struct sn_shared_var sn_shared_var;
typedef struct sn_blob sn_blob;

enum { SN_SHARED_MAX_NAMES = 65536 };

/* sn_shared_new: an empty store; NULL on out of memory. */
sn_shared *sn_shared_new(void);
/* sn_shared_destroy: frees every variable and value; NULL is fine; nulls *sp. */
void sn_shared_destroy(sn_shared **sp);

/* sn_shared_var: the variable called name, created (unset) on first use. Stable until the
 * store is destroyed. NULL with *err = SN_ENOMEM or SN_ELIMIT (too many names). Any thread. */
sn_shared_var *sn_shared_var_of(sn_shared *s, const char *name, int *err);

/* sn_shared_version: the variable's version: 0 while unset, then +1 per publish. Lock-free. */
uint64_t sn_shared_version(sn_shared_var *v);

/* sn_shared_read: a reference to the current value's bytes and its version, or NULL while
 * unset. The caller releases it with sn_blob_release. Any thread. */
sn_blob *sn_shared_read(sn_shared_var *v, uint64_t *version);

/* sn_shared_publish: makes data[0..len) the new value (copied). len 0 makes it unset (nil).
 * SN_OK (and the new version in *version, if not NULL) or SN_ENOMEM. Any thread. */
int sn_shared_publish(sn_shared_var *v, const void *data, size_t len, uint64_t *version);

/* sn_shared_lock / sn_shared_unlock: the variable's update lock (recursive), held around a
 * read-modify-publish so that no other update of the name interleaves. */
void sn_shared_lock(sn_shared_var *v);
void sn_shared_unlock(sn_shared_var *v);

/* sn_blob_data / sn_blob_len: the bytes of a value. sn_blob_release drops one reference. */
const char *sn_blob_data(const sn_blob *b);
size_t sn_blob_len(const sn_blob *b);
void sn_blob_release(sn_blob *b);

#endif
