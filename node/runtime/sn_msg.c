/* sn_msg: the struct, its strings and its payload in one block. */
#include "sn_msg.h"

#include <stdlib.h>
#include <string.h>

sn_msg *sn_msg_new(sn_msg_kind kind, const char *name, const char *reply, const char *src_stage,
                   const void *data, size_t len)
{
    return sn_msg_new_from(kind, name, reply, src_stage, NULL, 0, 0, data, len);
}

sn_msg *sn_msg_new_from(sn_msg_kind kind, const char *name, const char *reply,
                        const char *src_stage, const char *src_node, uint64_t src_inc,
                        uint64_t session, const void *data, size_t len)
{
    size_t nlen = name ? strlen(name) : 0;
    size_t rlen = reply ? strlen(reply) : 0;
    size_t slen = src_stage ? strlen(src_stage) : 0;
    size_t dlen = src_node ? strlen(src_node) : 0;
    size_t size = sizeof(sn_msg) + nlen + 1 + rlen + 1 + slen + 1 + dlen + 1 + len;
    sn_msg *m = malloc(size);
    if (!m)
        return NULL;
    m->size = size;
    char *p = (char *)(m + 1);
    memcpy(p, name ? name : "", nlen + 1);
    m->name = p;
    p += nlen + 1;
    if (reply) {
        memcpy(p, reply, rlen + 1);
        m->reply = p;
    } else {
        *p = '\0';
        m->reply = NULL;
    }
    p += rlen + 1;
    memcpy(p, src_stage ? src_stage : "", slen + 1);
    m->src_stage = p;
    p += slen + 1;
    memcpy(p, src_node ? src_node : "", dlen + 1);
    m->src_node = p;
    p += dlen + 1;
    m->src_inc = src_inc;
    m->session = session;
    m->flags = 0;
    m->deadline = 0;
    if (len)
        memcpy(p, data, len);
    m->data = p;
    m->len = len;
    m->next = NULL;
    m->kind = kind;
    m->src = 0;
    m->handle = 0;
    return m;
}

void sn_msg_destroy(sn_msg **mp)
{
    if (!mp || !*mp)
        return;
    free(*mp);
    *mp = NULL;
}
