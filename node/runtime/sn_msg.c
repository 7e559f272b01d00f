/* sn_msg: the struct, its strings and its payload in one block. */
#include "sn_msg.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

sn_msg *sn_msg_new(sn_msg_kind kind, const char *name, const char *reply, const char *src_stage,
                   const void *data, size_t len)
{
    return sn_msg_new_from(kind, name, reply, src_stage, NULL, 0, 0, data, len);
}

/* Writes the header and the four strings at the start of block m; returns where the payload
 * goes. The layout is the same for sn_msg_new_from and sn_msg_adopt. */
static char *fill(sn_msg *m, sn_msg_kind kind, const char *name, const char *reply,
                  const char *src_stage, const char *src_node)
{
    size_t nlen = name ? strlen(name) : 0;
    size_t rlen = reply ? strlen(reply) : 0;
    size_t slen = src_stage ? strlen(src_stage) : 0;
    size_t dlen = src_node ? strlen(src_node) : 0;
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
    m->src_inc = 0;
    m->session = 0;
    m->flags = 0;
    m->deadline = 0;
    m->next = NULL;
    m->kind = kind;
    m->src = 0;
    m->handle = 0;
    return p;
}

static size_t head_of(const char *name, const char *reply, const char *src_stage,
                      const char *src_node)
{
    return sizeof(sn_msg) + (name ? strlen(name) : 0) + 1 + (reply ? strlen(reply) : 0) + 1 +
           (src_stage ? strlen(src_stage) : 0) + 1 + (src_node ? strlen(src_node) : 0) + 1;
}

sn_msg *sn_msg_new_from(sn_msg_kind kind, const char *name, const char *reply,
                        const char *src_stage, const char *src_node, uint64_t src_inc,
                        uint64_t session, const void *data, size_t len)
{
    size_t size = head_of(name, reply, src_stage, src_node) + len;
    sn_msg *m = malloc(size);
    if (!m)
        return NULL;
    m->size = size;
    char *p = fill(m, kind, name, reply, src_stage, src_node);
    m->src_inc = src_inc;
    m->session = session;
    if (len)
        memcpy(p, data, len);
    m->data = p;
    m->len = len;
    return m;
}

size_t sn_msg_head(const char *name, const char *reply, const char *src_stage)
{
    return head_of(name, reply, src_stage, NULL);
}

sn_msg *sn_msg_adopt(sn_buf *b, size_t head, sn_msg_kind kind, const char *name,
                     const char *reply, const char *src_stage)
{
    assert(head == sn_msg_head(name, reply, src_stage) && b->len >= head &&
           "sn_msg_adopt: the block does not start with the head");
    sn_msg *m = (sn_msg *)(void *)b->data;
    m->size = b->len;
    char *p = fill(m, kind, name, reply, src_stage, NULL);
    m->data = p;
    m->len = b->len - head;
    sn_buf_init(b); /* the block is the message's now */
    return m;
}

void sn_msg_destroy(sn_msg **mp)
{
    if (!mp || !*mp)
        return;
    free(*mp);
    *mp = NULL;
}
