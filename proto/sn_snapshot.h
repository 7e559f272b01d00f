/* sn_snapshot: the one codec for Lua values that cross a boundary (states, threads, network).
 * Owns the snapshot format (MessagePack, see proto/SNAPSHOT.md) and its per-state caches in the
 * registry of each lua_State it touches. */
#ifndef SN_SNAPSHOT_H
#define SN_SNAPSHOT_H

#include <stddef.h>
#include <lua.h>

#include "sn_buf.h"

#define SN_SNAPSHOT_VERSION 1        /* the first byte of every snapshot */
#define SN_SNAPSHOT_DEPTH_DEFAULT 32 /* nesting limit unless opts say otherwise */
#define SN_SNAPSHOT_DEPTH_MAX 200    /* highest max_depth accepted; above is SN_EINVAL */

/* The content-addressed function cache, for snapshots that cross to another node: the
 * sender writes only the hash of bytecode the receiver already holds (function kind 2), the
 * receiver keeps the bytecode it saw and finds it again by hash. Callbacks may run on any
 * thread; they must be thread-safe. */
typedef struct sn_snapshot_fcache {
    /* encode: 1 when the receiver holds the bytecode of hash (write the hash only). */
    int (*known)(void *ud, const unsigned char hash[16]);
    /* encode: the bytecode of hash is written in full (the receiver will hold it). */
    void (*sent)(void *ud, const unsigned char hash[16]);
    /* decode: a malloc'd copy of the bytecode of hash (the decoder frees it), or NULL. */
    char *(*lookup)(void *ud, const unsigned char hash[16], size_t *len);
    /* decode: bytecode of hash arrived in full: keep it for later references. */
    void (*store)(void *ud, const unsigned char hash[16], const char *code, size_t len);
    void *ud;
} sn_snapshot_fcache;

typedef struct sn_snapshot_opts {
    int max_depth; /* nesting limit (tables and Lua functions), 1..SN_SNAPSHOT_DEPTH_MAX */
    int trusted;   /* decode: 1 = functions may be loaded; 0 = any function is SN_EUNTRUSTED */
    int env_index; /* decode: stack index of the table bound as _ENV and globals; 0 = globals */
    int arg_base;  /* encode: number of the first value in error paths ("arg 1") */
    const sn_snapshot_fcache *fcache; /* NULL: no function cache (kind 2 is an error) */
    unsigned *functions; /* encode: if not NULL, += the number of Lua functions written */
} sn_snapshot_opts;

/* sn_snapshot_opts_init: depth 32, untrusted, the state's globals as env, arg_base 1. */
void sn_snapshot_opts_init(sn_snapshot_opts *o);

/* sn_snapshot_encode: appends the n values at stack indices first..first+n-1 of L to out as one
 * snapshot. SN_OK, or SN_EINVAL (a value that cannot travel, bad opts), SN_ELIMIT (nesting),
 * SN_ENOMEM, SN_ELUA, with a message naming the value's path in err ("arg 2 .players[3].sock:
 * userdata cannot be sent"). On error out is as it was. Never raises; L's stack is unchanged.
 * Call from the thread that owns L. */
int sn_snapshot_encode(lua_State *L, int first, int n, const sn_snapshot_opts *o, sn_buf *out,
                       char *err, size_t errlen);

/* sn_snapshot_decode: pushes the values of the snapshot in data[0..len) onto L and sets
 * *nvalues. On any error (SN_EPROTO malformed or truncated, SN_ENOTSUP other version, SN_ELIMIT,
 * SN_EUNTRUSTED, SN_ENOENT unknown C function name, SN_ENOMEM, SN_EINVAL bad opts) pushes
 * nothing, writes a message to err and leaves L usable. Safe on any input when o->trusted is 0.
 * Call from the thread that owns L; data is only read during the call. */
int sn_snapshot_decode(lua_State *L, const char *data, size_t len, const sn_snapshot_opts *o,
                       int *nvalues, char *err, size_t errlen);

/* sn_snapshot_transparent: the metatable at idx is not encoded: a table carrying it travels
 * as a plain table (lua_sandbox's stage.index metatable is the node's own, not the value's).
 * Raises only on out of memory. */
void sn_snapshot_transparent(lua_State *L, int idx);

/* sn_snapshot_weak_add: adds the value at idx to the weak-keyed set that the registry holds
 * under the light userdata key (made on first use): a mark that dies with the value (the
 * transparent metatables here, lua_guard's sealed functions). Raises only on out of memory. */
void sn_snapshot_weak_add(lua_State *L, const void *key, int idx);

/* sn_snapshot_weak_has: 1 if the value at idx is in the set under key, else 0. Never raises. */
int sn_snapshot_weak_has(lua_State *L, const void *key, int idx);

/* sn_snapshot_count: reads only the header: SN_OK and the number of values in *nvalues, or
 * SN_EPROTO (not a snapshot) / SN_ENOTSUP (another version). Allocates nothing; any thread. */
int sn_snapshot_count(const char *data, size_t len, int *nvalues);

#endif
