/* sn_snapshot_error: the snapshot of the two values (nil, text) that a failed reply carries,
 * written without a lua_State (so the cluster needs no Lua). Byte-identical to what
 * sn_snapshot_encode writes for the same values (proto/SNAPSHOT.md). */
#ifndef SN_SNAPSHOT_ERROR_H
#define SN_SNAPSHOT_ERROR_H

#include "sn_buf.h"

/* sn_snapshot_encode_error: appends the snapshot of (nil, text) to out. SN_OK, SN_ENOMEM
 * (out unchanged), SN_ELIMIT (text over 4 GiB). Any thread. */
int sn_snapshot_encode_error(sn_buf *out, const char *text);

#endif
