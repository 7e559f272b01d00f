/* echo_plain: the baseline of bench_broker: a plain C echo server on libev, one thread, no Lua.
 *   echo_plain packet PORT  frames with a 32-bit little-endian length counting the whole frame
 *                           (the broker's tcp://...?packet); each frame is echoed
 *   echo_plain ws PORT      WebSocket (RFC 6455) over wslay, as the broker speaks it; each
 *                           message is echoed with its opcode
 *   echo_plain greet PORT   raw bytes: each accepted client gets "!" at once (accepts/s)
 * It prints "ready" once listening and serves until killed. A bench tool: limits are loose
 * (a frame over 1 MiB or a request over 8 KiB closes the connection). */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>
#include <wslay/wslay.h>

enum { MODE_PACKET, MODE_WS, MODE_GREET };
enum { FRAME_MAX = 1 << 20, REQ_MAX = 8192 };

static int mode;
static struct ev_loop *loop;
static unsigned char rbuf[65536];

typedef struct conn {
    int fd;
    ev_io rio, wio;
    unsigned char *in, *out; /* a partial frame or request; bytes the socket did not take */
    size_t in_len, out_len, out_off, out_cap;
    wslay_event_context_ptr ws;
} conn;

static void conn_free(conn *c)
{
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    close(c->fd);
    if (c->ws)
        wslay_event_context_free(c->ws);
    free(c->in);
    free(c->out);
    free(c);
}

/* Appends to c->out; returns 0, or -1 on out of memory. */
static int out_add(conn *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        unsigned char *q = realloc(c->out, cap);
        if (!q)
            return -1;
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

/* Writes what c->out holds; returns -1 when c is broken. */
static int flush(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            ev_io_start(loop, &c->wio);
            return 0;
        }
        return -1;
    }
    c->out_off = c->out_len = 0;
    ev_io_stop(loop, &c->wio);
    return 0;
}

/* ---- packet ---------------------------------------------------------------------------- */

/* Echoes every whole frame of p[0..n); keeps a partial one in c->in. -1: a bad frame. */
static int packet_frames(conn *c, const unsigned char *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 4) {
        uint32_t len = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
                       (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
        if (len < 4 || len > FRAME_MAX)
            return -1;
        if (n - off < len)
            break;
        if (out_add(c, p + off, len) < 0)
            return -1;
        off += len;
    }
    unsigned char *keep = NULL;
    if (n - off) {
        keep = malloc(n - off);
        if (!keep)
            return -1;
        memcpy(keep, p + off, n - off);
    }
    free(c->in);
    c->in = keep;
    c->in_len = n - off;
    return 0;
}

static int packet_read(conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN ? 0 : errno == EINTR ? packet_read(c) : -1;
        int rc;
        if (c->in_len) { /* join the partial frame and what came */
            unsigned char *all = malloc(c->in_len + (size_t)n);
            if (!all)
                return -1;
            memcpy(all, c->in, c->in_len);
            memcpy(all + c->in_len, rbuf, (size_t)n);
            rc = packet_frames(c, all, c->in_len + (size_t)n);
            free(all);
        } else {
            rc = packet_frames(c, rbuf, (size_t)n);
        }
        if (rc < 0 || flush(c) < 0)
            return -1;
        if ((size_t)n < sizeof rbuf)
            return 0;
    }
}

/* ---- WebSocket --------------------------------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    conn *c = ud;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    conn *c = ud;
    ssize_t n = send(c->fd, data, len,
                     MSG_NOSIGNAL | (flags & WSLAY_MSG_MORE ? MSG_MORE : 0));
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EINTR)
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static void ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *ud)
{
    (void)ud;
    if (wslay_is_ctrl_frame(a->opcode))
        return;
    struct wslay_event_msg m = {a->opcode, a->msg, a->msg_length};
    wslay_event_queue_msg(ctx, &m);
}

static const struct wslay_event_callbacks ws_cbs = {ws_recv, ws_send, NULL, NULL, NULL, NULL,
                                                    ws_msg};

static int ws_io(conn *c)
{
    if (wslay_event_recv(c->ws) != 0 || wslay_event_send(c->ws) != 0)
        return -1;
    if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws))
        return -1;
    if (wslay_event_want_write(c->ws))
        ev_io_start(loop, &c->wio);
    else
        ev_io_stop(loop, &c->wio);
    return 0;
}

/* The upgrade request: read to its blank line, answer 101 with the key's accept value. */
static int ws_upgrade(conn *c)
{
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return -1;
    if (n < 0)
        return 0;
    if (c->in_len + (size_t)n > REQ_MAX)
        return -1;
    unsigned char *q = realloc(c->in, c->in_len + (size_t)n + 1);
    if (!q)
        return -1;
    c->in = q;
    memcpy(c->in + c->in_len, rbuf, (size_t)n);
    c->in_len += (size_t)n;
    c->in[c->in_len] = 0;
    char *end = strstr((char *)c->in, "\r\n\r\n");
    if (!end)
        return 0;
    char *k = strcasestr((char *)c->in, "\r\nSec-WebSocket-Key:");
    if (!k)
        return -1;
    k += 20;
    while (*k == ' ')
        k++;
    size_t kl = strcspn(k, "\r\n ");
    char src[128];
    if (kl > 64)
        return -1;
    memcpy(src, k, kl);
    memcpy(src + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)src, kl + 36, sha);
    char acc[64];
    EVP_EncodeBlock((unsigned char *)acc, sha, sizeof sha);
    char resp[256];
    int rl = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
                      "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
    if (send(c->fd, resp, (size_t)rl, MSG_NOSIGNAL) != rl) /* a fresh socket takes 200 bytes */
        return -1;
    size_t rest = c->in_len - (size_t)(end + 4 - (char *)c->in);
    if (rest) /* frames came with the request: not in this bench's client */
        return -1;
    free(c->in);
    c->in = NULL;
    c->in_len = 0;
    if (wslay_event_context_server_init(&c->ws, &ws_cbs, c) != 0)
        return -1;
    wslay_event_config_set_max_recv_msg_length(c->ws, FRAME_MAX);
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void on_read(struct ev_loop *l, ev_io *w, int revents)
{
    (void)l, (void)revents;
    conn *c = w->data;
    int rc;
    if (mode == MODE_PACKET)
        rc = packet_read(c);
    else if (mode == MODE_WS)
        rc = c->ws ? ws_io(c) : ws_upgrade(c);
    else
    {
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        rc = n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)) ? 0 : -1;
    }
    if (rc < 0)
        conn_free(c);
}

static void on_write(struct ev_loop *l, ev_io *w, int revents)
{
    (void)l, (void)revents;
    conn *c = w->data;
    if ((c->ws ? ws_io(c) : flush(c)) < 0)
        conn_free(c);
}

static void on_accept(struct ev_loop *l, ev_io *w, int revents)
{
    (void)revents;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        ev_io_init(&c->rio, on_read, fd, EV_READ);
        ev_io_init(&c->wio, on_write, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_io_start(l, &c->rio);
        if (mode == MODE_GREET && send(fd, "!", 1, MSG_NOSIGNAL) != 1) /* a fresh socket */
            conn_free(c);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "packet") && strcmp(argv[1], "ws") &&
                      strcmp(argv[1], "greet"))) {
        fprintf(stderr, "usage: echo_plain packet|ws|greet PORT\n");
        return 2;
    }
    mode = !strcmp(argv[1], "packet") ? MODE_PACKET : !strcmp(argv[1], "ws") ? MODE_WS
                                                                              : MODE_GREET;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { /* as the node does at start */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4096) < 0) {
        perror("echo_plain: listen");
        return 1;
    }
    loop = ev_default_loop(0);
    ev_io lw;
    ev_io_init(&lw, on_accept, s, EV_READ);
    ev_io_start(loop, &lw);
    printf("ready\n");
    fflush(stdout);
    ev_run(loop, 0);
    return 0;
}
