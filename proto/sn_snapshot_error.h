/* sn_snapshot_error: the snapshot of an expected failure, (nil, text), written without Lua, so
 * that the cluster can answer a request with an error and keep no lua_State of its own. */
#ifndef SN_SNAPSHOT_ERROR_H
#define SN_SNAPSHOT_ERROR_H

#include "sn_buf.h"

/* sn_snapshot_encode_error: appends to out the snapshot of the two values nil and text, byte for
 * byte what sn_snapshot_encode writes for (nil, text) from a lua_State (proto/SNAPSHOT.md).
 * text is NUL-terminated; NULL is "". SN_OK, or SN_ENOMEM with out as it was. Any thread. */
int sn_snapshot_encode_error(sn_buf *out, const char *text);

#endif
