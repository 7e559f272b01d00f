/* sn_cluster_hooks: the failed-answer message, encoded without Lua (proto/sn_snapshot_error). */
#include "sn_cluster_hooks.h"
#include "sn_error.h"
#include "sn_snapshot_error.h"

void sn_cluster_post_error(const sn_cluster_hooks *h, uint64_t actor, const char *rid,
                           const char *from, const char *why)
{
    sn_buf buf;
    sn_buf_init(&buf);
    if (sn_snapshot_encode_error(&buf, why) == SN_OK) {
        sn_msg *m = sn_msg_new_from(SN_MSG_SIGNAL, rid, NULL, "", from, 0, 0, buf.data, buf.len);
        if (m && h->post(h->ud, actor, m, 1) != SN_OK)
            sn_msg_destroy(&m);
    }
    sn_buf_fini(&buf);
}
