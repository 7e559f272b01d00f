/* sn_transport: the calls through the table of operations. */
#include "sn_transport.h"
#include "sn_error.h"

int sn_transport_connect(sn_transport *t, const char *endpoint, const char *peer, sn_conn **out)
{
    return t->ops->connect(t, endpoint, peer, out);
}

int sn_transport_admits(sn_transport *t, const char *peer)
{
    return !t->ops->admits || t->ops->admits(t, peer);
}

void sn_transport_close(sn_transport *t, sn_conn **connp)
{
    if (connp && *connp) {
        t->ops->close(t, *connp, 0);
        *connp = NULL;
    }
}

void sn_transport_close_gently(sn_transport *t, sn_conn **connp)
{
    if (connp && *connp) {
        t->ops->close(t, *connp, 1);
        *connp = NULL;
    }
}

int sn_transport_readable(sn_transport *t, sn_conn *conn)
{
    return conn && t->ops->readable ? t->ops->readable(t, conn) : 0;
}

int sn_transport_send(sn_transport *t, sn_conn *conn, const void *data, size_t len)
{
    return conn ? t->ops->send(t, conn, data, len) : SN_ENOENT;
}

int sn_transport_answer(sn_transport *t, const void *id, size_t idlen, const void *data,
                        size_t len)
{
    return t->ops->answer(t, id, idlen, data, len);
}

void sn_transport_drain(sn_transport *t, sn_transport_frame_fn fn, void *ud)
{
    t->ops->drain(t, fn, ud);
}

void sn_transport_destroy(sn_transport **tp)
{
    if (tp && *tp) {
        (*tp)->ops->destroy(*tp);
        *tp = NULL;
    }
}
