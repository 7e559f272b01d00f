/* sn_transport: the contract both implementations keep: frames go out and come back by
 * identity; a connection closed from inside a drain's callback is freed after the drain and
 * hands up nothing more (issue 11: add_peer closed a socket drain() was still reading). */
#include "sn_error.h"
#include "sn_opts.h"
#include "sn_transport_fake.h"
#include "sn_transport_zmq.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct got {
    int n;
    char last[64];
    char id[256];
    size_t idlen;
    sn_transport *t;
    sn_conn **close_on_first; /* closes this connection when the first frame comes */
} got;

static void on_frame(void *ud, const void *data, size_t len, const void *id, size_t idlen,
                     const char *peer)
{
    (void)peer;
    got *g = ud;
    g->n++;
    snprintf(g->last, sizeof g->last, "%.*s", (int)len, (const char *)data);
    if (id && idlen <= sizeof g->id) {
        memcpy(g->id, id, idlen);
        g->idlen = idlen;
    }
    if (g->close_on_first && g->n == 1)
        sn_transport_close(g->t, g->close_on_first);
}

/* Drains t until g has want frames or about two seconds passed. */
static void wait_for(sn_transport *t, got *g, int want)
{
    for (int i = 0; i < 200 && g->n < want; i++) {
        sn_transport_drain(t, on_frame, g);
        if (g->n < want)
            usleep(10000);
    }
}

static void close_inside_drain(sn_transport *x, sn_transport *y, const char *x_endpoint)
{
    sn_conn *c = NULL;
    cr_assert_eq(sn_transport_connect(y, x_endpoint, NULL, &c), SN_OK);
    cr_assert_eq(sn_transport_send(y, c, "hello", 5), SN_OK);
    got gx = {0};
    wait_for(x, &gx, 1);
    cr_assert_eq(gx.n, 1);
    cr_assert_str_eq(gx.last, "hello");
    cr_assert_eq(sn_transport_answer(x, gx.id, gx.idlen, "one", 3), SN_OK);
    cr_assert_eq(sn_transport_answer(x, gx.id, gx.idlen, "two", 3), SN_OK);
    usleep(100000); /* both answers are there before the drain */
    got gy = {.t = y, .close_on_first = &c};
    wait_for(y, &gy, 1);
    sn_transport_drain(y, on_frame, &gy);
    cr_assert_eq(gy.n, 1, "%d frames from a closed connection", gy.n);
    cr_assert_str_eq(gy.last, "one");
    cr_assert_null(c);
}

Test(sn_transport, fake_close_inside_drain_is_deferred)
{
    sn_fake_net *net = sn_fake_net_new();
    sn_transport *x = sn_transport_fake_new(net, "fake://x");
    sn_transport *y = sn_transport_fake_new(net, "fake://y");
    close_inside_drain(x, y, "fake://x");
    sn_transport_destroy(&x);
    sn_transport_destroy(&y);
    sn_fake_net_destroy(&net);
}

/* A zmq transport listening on a free port of 127.0.0.1 (its endpoint in listen); ports in
 * use are logged, then the next tried. */
static sn_transport *zmq_listening(sn_opts *o, char *listen, size_t cap, sn_log *lg)
{
    int err = SN_EIO;
    sn_transport *x = NULL;
    for (int i = 0; i < 200 && !x; i++) {
        int port = 42000 + (int)((getpid() + i * 89 + 7) % 9000);
        snprintf(listen, cap, "tcp://127.0.0.1:%d", port);
        x = sn_transport_zmq_new(o, NULL, lg, &err);
    }
    cr_assert_not_null(x, "%s", sn_strerror(err));
    return x;
}

Test(sn_transport, zmq_close_inside_drain_is_deferred)
{
    char listen[64];
    sn_opts ox = {.listen = listen, .peer_queue = 100, .frame_max = 1 << 20,
                  .handshake_ms = 1000, .join_retry_max_ms = 1000};
    sn_opts oy = ox;
    oy.listen = NULL;
    sn_log *lg = sn_log_new(stderr, SN_LOG_ERROR);
    sn_transport *x = zmq_listening(&ox, listen, sizeof listen, lg);
    int err;
    sn_transport *y = sn_transport_zmq_new(&oy, NULL, lg, &err);
    cr_assert_not_null(y);
    close_inside_drain(x, y, listen);
    sn_transport_destroy(&y);
    sn_transport_destroy(&x);
    sn_log_destroy(&lg);
}

/* The idle close of the cluster's links (issue 11): a frame still queued on a connection
 * (here: sent before the connection is even up) goes out after a gentle close. */
Test(sn_transport, zmq_gentle_close_sends_what_is_queued)
{
    char listen[64];
    sn_opts ox = {.listen = listen, .peer_queue = 100, .frame_max = 1 << 20,
                  .handshake_ms = 1000, .join_retry_max_ms = 1000};
    sn_opts oy = ox;
    oy.listen = NULL;
    sn_log *lg = sn_log_new(stderr, SN_LOG_ERROR);
    sn_transport *x = zmq_listening(&ox, listen, sizeof listen, lg);
    int err;
    sn_transport *y = sn_transport_zmq_new(&oy, NULL, lg, &err);
    cr_assert_not_null(y);
    sn_conn *c = NULL;
    cr_assert_eq(sn_transport_connect(y, listen, NULL, &c), SN_OK);
    cr_assert_eq(sn_transport_send(y, c, "queued", 6), SN_OK);
    sn_transport_close_gently(y, &c);
    cr_assert_null(c);
    got gx = {0};
    wait_for(x, &gx, 1);
    cr_assert_eq(gx.n, 1, "the queued frame was dropped");
    cr_assert_str_eq(gx.last, "queued");
    sn_transport_destroy(&y);
    sn_transport_destroy(&x);
    sn_log_destroy(&lg);
}

Test(sn_transport, fake_cut_link_is_one_way)
{
    sn_fake_net *net = sn_fake_net_new();
    sn_transport *x = sn_transport_fake_new(net, "fake://x");
    sn_transport *y = sn_transport_fake_new(net, "fake://y");
    sn_conn *xy = NULL, *yx = NULL;
    sn_transport_connect(x, "fake://y", NULL, &xy);
    sn_transport_connect(y, "fake://x", NULL, &yx);
    sn_fake_net_cut_link(net, "fake://x", "fake://y", 1);
    sn_transport_send(x, xy, "lost", 4);
    sn_transport_send(y, yx, "kept", 4);
    got gx = {0}, gy = {0};
    sn_transport_drain(x, on_frame, &gx);
    sn_transport_drain(y, on_frame, &gy);
    cr_assert_eq(gx.n, 1);
    cr_assert_eq(gy.n, 0);
    sn_transport_destroy(&x);
    sn_transport_destroy(&y);
    sn_fake_net_destroy(&net);
}
