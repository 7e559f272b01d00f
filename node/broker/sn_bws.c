#define _GNU_SOURCE /* memmem */
/* sn_bws: WebSocket connections: the HTTP upgrade is parsed here (bounded in size, and in time
 * by the broker's sweep), frames by wslay on our non-blocking socket. wslay answers pings and
 * close frames itself, closes with 1002 on a malformed frame and 1009 past the message limit;
 * we add 1007 for text that is not UTF-8. After our close frame goes out we drain the socket
 * to EOF (bounded by the sweep) so that the peer reads the close frame before our FIN. */
#include "sn_bconn.h"
#include "sn_bjson.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HANDSHAKE_MAX = 8192 };

static void reject(bconn *c, int status, const char *why)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n", status, why);
    if (sn_bconn_send(c, buf, (size_t)n, 0) < 0) { /* best effort: it is going away */
    }
    sn_bconn_close(c, SN_BCLOSE_HANDSHAKE, EPROTO, "WebSocket upgrade refused: %d %s", status,
                   why);
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    bconn *c = ud;
    if (c->paused) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (c->in && c->in_off < c->in_len) { /* bytes that came with the upgrade request */
        size_t n = c->in_len - c->in_off < len ? c->in_len - c->in_off : len;
        memcpy(buf, c->in + c->in_off, n);
        c->in_off += n;
        return (ssize_t)n;
    }
    ssize_t n = sn_bconn_recv(c, buf, len);
    if (n > 0) {
        c->last_io = sn_bconn_now(c->b);
        return n;
    }
    if (n == 0) {
        c->eof = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->err = errno;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    bconn *c = ud;
    if (c->out_off < c->out_len) { /* the 101 answer first */
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    /* a frame's header and payload come in two calls: one segment, not two */
    ssize_t n = sn_bconn_send(c, data, len, (flags & WSLAY_MSG_MORE) != 0);
    if (n >= 0) {
        if (c->l)
            atomic_fetch_add(&c->l->bytes_out, (uint64_t)n);
        return n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->err = errno;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *ud)
{
    bconn *c = ud;
    if (c->dead || wslay_event_get_close_sent(ctx))
        return;
    if (a->opcode == WSLAY_TEXT_FRAME) {
        if (!sn_utf8_valid(a->msg, a->msg_length)) {
            c->hint = SN_BCLOSE_UTF8 + 1;
            wslay_event_queue_close(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                    (const uint8_t *)"invalid UTF-8", 13);
            return;
        }
        if (c->decode & SN_BROKER_F_JSON) {
            sn_buf b;
            sn_buf_init(&b);
            char err[128];
            if (sn_bjson_to_mpack((const char *)a->msg, a->msg_length, &b, err, sizeof err)) {
                sn_buf_fini(&b);
                c->hint = SN_BCLOSE_DECODE + 1;
                wslay_event_queue_close(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                        (const uint8_t *)err, strlen(err));
                return;
            }
            sn_bconn_event(c, SN_BEV_DATA, SN_BROKER_F_TEXT | SN_BROKER_F_MSGPACK, b.data,
                           b.len, NULL, 0);
            sn_buf_fini(&b);
            return;
        }
        sn_bconn_event(c, SN_BEV_DATA, SN_BROKER_F_TEXT, a->msg, a->msg_length, NULL, 0);
    } else if (a->opcode == WSLAY_BINARY_FRAME) {
        sn_bconn_event(c, SN_BEV_DATA, c->decode & SN_BROKER_F_MSGPACK, a->msg, a->msg_length,
                       NULL, 0);
    }
}

static int reason_of(uint16_t code)
{
    switch (code) {
    case WSLAY_CODE_PROTOCOL_ERROR: return SN_BCLOSE_PROTOCOL;
    case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA: return SN_BCLOSE_UTF8;
    case WSLAY_CODE_MESSAGE_TOO_BIG: return SN_BCLOSE_OVERSIZE;
    default: return SN_BCLOSE_LOCAL;
    }
}

static const char *code_text(uint16_t code)
{
    switch (code) {
    case WSLAY_CODE_PROTOCOL_ERROR: return "1002 protocol error (malformed frame)";
    case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA: return "1007 invalid UTF-8 in a text message";
    case WSLAY_CODE_MESSAGE_TOO_BIG: return "1009 message over the limit (broker_message)";
    default: return "closed";
    }
}

/* Sends what wslay holds; once the close handshake is over (or ours is out), ends or drains. */
static void pump(bconn *c)
{
    if (c->dead)
        return;
    if (c->out_off < c->out_len) {
        ssize_t n = sn_bconn_send(c, c->out + c->out_off, c->out_len - c->out_off, 0);
        if (n > 0)
            c->out_off += (size_t)n;
        if (c->out_off < c->out_len) {
            sn_bconn_want_write(c);
            return;
        }
        c->out_off = c->out_len = 0;
    }
    if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, c->err, "write: %s", strerror(c->err));
        return;
    }
    if (wslay_event_want_write(c->ws)) {
        sn_bconn_want_write(c);
        if (sn_bws_queued(c) > sn_bconn_limits(c)->output)
            sn_bconn_close(c, SN_BCLOSE_SLOW, 0, "slow consumer: %zu bytes queued, limit %zu "
                           "(broker_output)", sn_bws_queued(c), sn_bconn_limits(c)->output);
        return;
    }
    if (wslay_event_get_close_sent(c->ws) && !c->wsclose) {
        uint16_t code = wslay_event_get_status_code_sent(c->ws);
        c->wsclose = c->hint ? c->hint
                     : (wslay_event_get_close_received(c->ws) && c->reason != SN_BCLOSE_LOCAL
                            ? SN_BCLOSE_PEER
                            : reason_of(code)) + 1;
        if (c->reason == SN_BCLOSE_LOCAL && code == 1000)
            c->wsclose = SN_BCLOSE_LOCAL + 1;
        c->wswhy = c->wsclose == SN_BCLOSE_PEER + 1 ? "closed by the peer"
                   : c->hint == SN_BCLOSE_DECODE + 1
                   ? "1007 a text message that is not JSON (?json)" : code_text(code);
        sn_bconn_shutdown_wr(c);
        c->deadline = sn_clock_mono() + 2;
    }
}

/* Client frames are masked with random keys (RFC 6455 section 5.3). */
static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ud;
    if (RAND_bytes(buf, (int)len) != 1) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

int sn_bws_client_prepare(bconn *c, const sn_buri *u)
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return SN_EIO;
    char key[32], accept[64], req[1024];
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    sn_bws_accept(key, accept, sizeof accept);
    size_t n = sn_bws_request(u, key, req, sizeof req);
    if (!n || !(c->ws_accept = strdup(accept)) || !(c->out = malloc(n)))
        return SN_ENOMEM;
    memcpy(c->out, req, n);
    c->out_len = c->out_cap = n;
    c->out_off = 0;
    return SN_OK;
}

/* Reads more of a handshake into c->in: 1 when bytes came; 0 when the caller returns (no
 * bytes yet, or c closed: at the peer's end of stream with eof_errno and eof_reason). */
static int read_more(bconn *c, int eof_errno, const char *eof_reason)
{
    for (;;) {
        ssize_t n = sn_bconn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            return 1;
        }
        if (n == 0) {
            sn_bconn_close(c, SN_BCLOSE_HANDSHAKE, eof_errno, "%s", eof_reason);
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            sn_bconn_close(c, SN_BCLOSE_ERROR, errno, "read: %s", strerror(errno));
        return 0;
    }
}

/* A ws:// join reads the server's answer to its upgrade request; once it checks, wslay takes
 * the connection (as a client: its frames masked) and the owner gets CONNECT. */
static void client_handshake(bconn *c)
{
    if (!c->in && !(c->in = malloc(HANDSHAKE_MAX))) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
        return;
    }
    c->in_cap = HANDSHAKE_MAX;
    for (;;) {
        if (c->in_len == c->in_cap) {
            sn_bconn_close(c, SN_BCLOSE_HANDSHAKE, EPROTO, "WebSocket upgrade failed: the "
                           "answer is over %d bytes", HANDSHAKE_MAX);
            return;
        }
        if (!read_more(c, ECONNRESET, "WebSocket upgrade failed: the server closed the "
                       "connection"))
            return;
        const unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end)
            continue;
        size_t hl = (size_t)(end + 4 - c->in);
        char why[160];
        c->in[hl - 1] = 0; /* the answer as a string (its last \n is not needed) */
        if (sn_bws_answer_check((const char *)c->in, hl - 1, c->ws_accept, why, sizeof why)) {
            sn_bconn_close(c, SN_BCLOSE_HANDSHAKE, EPROTO, "WebSocket upgrade failed: %s", why);
            return;
        }
        free(c->ws_accept);
        c->ws_accept = NULL;
        c->in_off = hl; /* frames that came with the answer: wslay reads them first */
        struct wslay_event_callbacks cb = {.recv_callback = on_recv, .send_callback = on_send,
                                           .genmask_callback = on_genmask,
                                           .on_msg_recv_callback = on_msg};
        if (wslay_event_context_client_init(&c->ws, &cb, c) != 0) {
            c->ws = NULL;
            sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
            return;
        }
        wslay_event_config_set_max_recv_msg_length(c->ws, sn_bconn_limits(c)->message);
        sn_bconn_joined(c);
        if (!c->dead)
            sn_bws_read(c);
        return;
    }
}

void sn_bws_handshake(bconn *c)
{
    if (c->l == &c->b->joins) {
        client_handshake(c);
        return;
    }
    if (!c->in && !(c->in = malloc(HANDSHAKE_MAX))) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
        return;
    }
    c->in_cap = HANDSHAKE_MAX;
    for (;;) {
        if (c->in_len == c->in_cap) {
            reject(c, 431, "Request Header Fields Too Large");
            return;
        }
        if (!read_more(c, 0, "closed during the WebSocket upgrade"))
            return;
        sn_bws_req req;
        int r = sn_bws_parse((const char *)c->in, c->in_len, &req);
        if (r == 0)
            continue;
        if (r < 0) {
            reject(c, -r, -r == 426 ? "Upgrade Required" : -r == 405 ? "Method Not Allowed"
                                                                      : "Bad Request");
            return;
        }
        size_t pl = strcspn(req.path, "?");
        if (strlen(c->l->u.path) != pl || strncmp(req.path, c->l->u.path, pl)) {
            reject(c, 404, "Not Found");
            return;
        }
        char resp[256];
        size_t rl = sn_bws_response(&req, resp, sizeof resp);
        if (!(c->out = malloc(rl))) {
            sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
            return;
        }
        memcpy(c->out, resp, rl);
        c->out_len = c->out_cap = rl;
        c->out_off = 0;
        c->in_off = (size_t)r;
        struct wslay_event_callbacks cb = {.recv_callback = on_recv, .send_callback = on_send,
                                           .on_msg_recv_callback = on_msg};
        if (wslay_event_context_server_init(&c->ws, &cb, c) != 0) {
            c->ws = NULL;
            sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
            return;
        }
        wslay_event_config_set_max_recv_msg_length(c->ws, sn_bconn_limits(c)->message);
        c->state = BC_OPEN;
        pump(c); /* the 101 answer */
        sn_bconn_accepted(c);
        if (!c->dead)
            sn_bws_read(c);
        return;
    }
}

void sn_bws_read(bconn *c)
{
    if (c->dead || !c->ws)
        return;
    if (c->wsclose) { /* drain to EOF after our close frame */
        char buf[4096];
        ssize_t n;
        while ((n = sn_bconn_recv(c, buf, sizeof buf)) > 0) {
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            sn_bconn_close(c, c->wsclose - 1, 0, "%s", c->wswhy ? c->wswhy : "closed");
        return;
    }
    int r = wslay_event_recv(c->ws);
    if (r != 0 && !wslay_event_get_close_sent(c->ws) && !c->eof) {
        /* a malformed frame: wslay may have queued 1002, or not */
        wslay_event_queue_close(c->ws, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
    }
    if (c->eof) {
        sn_bconn_close(c, SN_BCLOSE_PEER, 0, "closed by the peer");
        return;
    }
    pump(c);
    if (!c->dead && c->wsclose && !wslay_event_want_write(c->ws))
        sn_bws_read(c); /* maybe the peer closed already */
}

void sn_bws_write(bconn *c)
{
    if (c->dead || !c->ws)
        return;
    pump(c);
    if (!c->dead && !wslay_event_want_write(c->ws) && c->out_off >= c->out_len && !c->wsclose)
        ev_io_stop(c->b->ev, &c->wio);
}

void sn_bws_commit(bconn *c, unsigned flags, const void *data, size_t len)
{
    if (!c->ws || wslay_event_get_close_sent(c->ws))
        return;
    sn_buf json;
    sn_buf_init(&json);
    int text = (flags & SN_BROKER_F_TEXT) != 0;
    if ((flags & SN_BROKER_F_MSGPACK) && (c->decode & SN_BROKER_F_JSON)) {
        char err[128];
        if (sn_bjson_from_mpack(data, len, &json, err, sizeof err) != SN_OK) {
            sn_log_write(sn_bconn_log(c), SN_LOG_WARN, "broker", "socket %llu: a commit that "
                         "is not JSON (%s): not sent", (unsigned long long)c->id, err);
            sn_buf_fini(&json);
            return;
        }
        data = json.data;
        len = json.len;
        text = 1;
    } else if (flags & SN_BROKER_F_MSGPACK) {
        text = 0;
    }
    struct wslay_event_msg m = {.opcode = text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
                                .msg = data, .msg_length = len};
    int rc = wslay_event_queue_msg(c->ws, &m);
    sn_buf_fini(&json);
    if (rc != 0) {
        sn_bconn_close(c, SN_BCLOSE_ERROR, ENOMEM, "out of memory");
        return;
    }
    if (sn_bws_queued(c) > sn_bconn_limits(c)->output) {
        sn_bconn_close(c, SN_BCLOSE_SLOW, 0, "slow consumer: %zu bytes queued, limit %zu "
                       "(broker_output)", sn_bws_queued(c), sn_bconn_limits(c)->output);
        return;
    }
    if (c->commit_ms > 0) {
        if (!ev_is_active(&c->flush)) {
            ev_timer_set(&c->flush, c->commit_ms / 1000.0, 0);
            ev_timer_start(c->b->ev, &c->flush);
        }
        return;
    }
    sn_bconn_flush_later(c);
}

void sn_bws_close(bconn *c, uint16_t code, const char *reason)
{
    if (!c->ws || wslay_event_get_close_sent(c->ws))
        return;
    wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, strlen(reason));
    pump(c);
}

void sn_bws_goodbye(bconn *c, uint16_t code, const char *reason)
{
    if (!c->ws || c->state != BC_OPEN || wslay_event_get_close_sent(c->ws))
        return;
    wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, strlen(reason));
    if (c->out_off >= c->out_len)
        wslay_event_send(c->ws); /* once, non-blocking: what does not fit is lost */
}

size_t sn_bws_queued(bconn *c)
{
    return c->ws ? wslay_event_get_queued_msg_length(c->ws) : 0;
}

void sn_bws_free(bconn *c)
{
    if (c->ws)
        wslay_event_context_free(c->ws);
    c->ws = NULL;
}
