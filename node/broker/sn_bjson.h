/* sn_bjson: JSON text <-> one MessagePack value, for WebSocket sockets opened with ?json: the
 * broker turns a client's JSON text into MessagePack (which the Lua side decodes as it does
 * ?msgpack), and a committed table (MessagePack) into JSON text. cJSON parses and prints. */
#ifndef SN_BJSON_H
#define SN_BJSON_H

#include "sn_buf.h"

#include <stddef.h>

enum { SN_BJSON_DEPTH = 32 }; /* nesting, as the snapshot codec */

/* sn_bjson_to_mpack: appends the value of JSON text[0..len) to out as MessagePack. null is
 * nil, integral numbers within 2^53 are integers, objects are maps with str keys. SN_OK, or
 * SN_EPROTO (not JSON, too deep) / SN_ENOMEM with a reason in err. */
int sn_bjson_to_mpack(const char *text, size_t len, sn_buf *out, char *err, size_t errlen);
/* sn_bjson_from_mpack: appends one MessagePack value (p[0..len), nothing after it) to out as
 * JSON text. Maps need str or integer keys; strings must be UTF-8; ext types are refused.
 * SN_OK, SN_EPROTO, SN_EINVAL (not expressible as JSON), SN_ENOMEM; reason in err. */
int sn_bjson_from_mpack(const void *p, size_t len, sn_buf *out, char *err, size_t errlen);

#endif
