/* sn_hash: the non-cryptographic content hash of stage-node (MurmurHash3 x64_128).
 * Owns nothing; used to name function bytecode so peers can cache it by content. */
#ifndef SN_HASH_H
#define SN_HASH_H

#include <stddef.h>
#include <stdint.h>

/* sn_hash_murmur3_128: MurmurHash3 x64_128 of len bytes at data with seed, as Austin Appleby
 * describes it (blocks read little-endian); out[0] is h1, out[1] is h2. Any thread. */
void sn_hash_murmur3_128(const void *data, size_t len, uint32_t seed, uint64_t out[2]);

#endif
