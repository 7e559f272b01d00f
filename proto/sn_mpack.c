/* sn_mpack: the out-of-line part of the MessagePack layer of sn_mpack.h. */
#include "sn_mpack.h"

void sn_mpack_patch_count(void *hdr, uint32_t n)
{
    uint8_t *p = hdr;
    if ((p[0] & 0xe0) == 0x80) { /* fixmap 0x80.., fixarray 0x90.. */
        assert(n < 16 && "sn_mpack_patch_count: count does not fit a fix header");
        p[0] = (uint8_t)((p[0] & 0xf0) | n);
    } else if (p[0] == 0xdc || p[0] == 0xde) {
        assert(n <= 0xffff && "sn_mpack_patch_count: count does not fit 16 bits");
        sn_mpack_be_at(p + 1, n, 2);
    } else {
        assert((p[0] == 0xdd || p[0] == 0xdf) && "sn_mpack_patch_count: not a container header");
        sn_mpack_be_at(p + 1, n, 4);
    }
}
