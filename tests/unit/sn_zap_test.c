/* sn_zap: real ZeroMQ over loopback TCP: a CURVE ROUTER consulting the handler, DEALERs with
 * allowed, unknown and no keys, the handler's protocol answers, and failing closed without it. */
#include "sn_curve.h"
#include "sn_error.h"
#include "sn_log.h"
#include "sn_zap.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static void *ctx;
static sn_curve_keys *cluster;  /* the cluster keypair: server key and allowed client key */
static sn_curve_keys *stranger; /* a keypair nobody listed */
static sn_curve_allow *allow;
static sn_log *logger;
static FILE *logstream;
static char *logbuf;
static size_t loglen;

static void setup(void)
{
    ctx = zmq_ctx_new();
    cr_assert_not_null(ctx);
    char pub[41], sec[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    cr_assert_eq(sn_curve_keys_from_z85(sec, &cluster), SN_OK);
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    cr_assert_eq(sn_curve_keys_from_z85(sec, &stranger), SN_OK);
    cr_assert_eq(sn_curve_allow_of_keys(cluster, "n1", &allow), SN_OK);
    logstream = open_memstream(&logbuf, &loglen);
    cr_assert_not_null(logstream);
    logger = sn_log_new(logstream, SN_LOG_DEBUG);
    cr_assert_not_null(logger);
}

/* What a test opened, so that a failed assertion (which skips the test's own cleanup) does
 * not leave zmq_ctx_term waiting for sockets forever. */
enum { MAX_OPEN = 32 };
static void *open_socks[MAX_OPEN];
static sn_zap *open_zaps[4];

static void *track(void **slots, size_t n, void *p)
{
    for (size_t i = 0; i < n; i++)
        if (!slots[i]) return slots[i] = p;
    cr_assert_fail("too many open objects in one test");
    return p;
}

static void untrack(void **slots, size_t n, void *p)
{
    for (size_t i = 0; i < n; i++)
        if (slots[i] == p) slots[i] = NULL;
}

static void sock_close(void *s)
{
    untrack(open_socks, MAX_OPEN, s);
    zmq_close(s);
}

static sn_zap *zap_start(void *zctx, const sn_curve_allow *a, sn_log *log, int *err)
{
    sn_zap *z = sn_zap_new(zctx, a, log, err);
    if (z) track((void **)open_zaps, 4, z);
    return z;
}

static void zap_stop(sn_zap **zp)
{
    sn_zap *z = *zp;
    *zp = NULL;
    if (z) untrack((void **)open_zaps, 4, z);
    sn_zap_destroy(&z);
}

static void teardown(void)
{
    for (size_t i = 0; i < MAX_OPEN; i++)
        if (open_socks[i]) sock_close(open_socks[i]);
    for (size_t i = 0; i < 4; i++)
        if (open_zaps[i]) zap_stop(&open_zaps[i]);
    if (ctx) zmq_ctx_term(ctx);
    sn_curve_keys_destroy(&cluster);
    sn_curve_keys_destroy(&stranger);
    sn_curve_allow_destroy(&allow);
    sn_log_destroy(&logger);
    fclose(logstream);
    free(logbuf);
}

TestSuite(sn_zap, .init = setup, .fini = teardown, .timeout = 60);

static void *socket_linger0(int type)
{
    void *s = zmq_socket(ctx, type);
    cr_assert_not_null(s);
    track(open_socks, MAX_OPEN, s);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    return s;
}

/* A ROUTER as the node makes it: CURVE server, ZAP domain, enforced; bound on loopback. */
static void *make_router(char *endpoint, size_t len)
{
    void *r = socket_linger0(ZMQ_ROUTER);
    cr_assert_eq(sn_curve_server(r, cluster), SN_OK);
    cr_assert_eq(zmq_bind(r, "tcp://127.0.0.1:*"), 0);
    cr_assert_eq(zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);
    return r;
}

/* A DEALER that connects and queues "hello" (sent once the handshake succeeds). */
static void *dealer_send(const char *endpoint, const sn_curve_keys *own)
{
    void *d = socket_linger0(ZMQ_DEALER);
    uint8_t server[SN_CURVE_KEY_LEN];
    cr_assert_eq(sn_curve_allow_key_of(allow, "n1", server), SN_OK);
    if (own == cluster) {
        cr_assert_eq(sn_curve_client(d, cluster, server), SN_OK);
    } else if (own) {
        /* An unknown client that knows the server's public key: its own keypair, then the
         * cluster's public key as the server key. */
        cr_assert_eq(sn_curve_client(d, own, server), SN_OK);
        cr_assert_eq(zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, sn_curve_keys_public(cluster), 40), 0);
    }
    cr_assert_eq(zmq_connect(d, endpoint), 0);
    cr_assert_eq(zmq_send(d, "hello", 5, 0), 5);
    return d;
}

/* Waits up to timeout_ms for [identity, "hello"] on the router; copies its User-Id. */
static int router_got_hello(void *r, int timeout_ms, char *user_id, size_t idlen)
{
    zmq_pollitem_t it = {r, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) return 0;
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    cr_assert(zmq_msg_recv(&id, r, 0) >= 0);
    cr_assert(zmq_msg_more(&id));
    cr_assert_eq(zmq_msg_recv(&body, r, 0), 5);
    cr_assert_eq(memcmp(zmq_msg_data(&body), "hello", 5), 0);
    if (user_id) {
        const char *u = zmq_msg_gets(&body, "User-Id");
        snprintf(user_id, idlen, "%s", u ? u : "");
    }
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    return 1;
}

static int wait_refused(sn_zap *z, uint64_t want)
{
    for (int i = 0; i < 500; i++) {
        if (sn_zap_refused(z) >= want) return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static const char *log_text(void)
{
    fflush(logstream);
    return logbuf ? logbuf : "";
}

Test(sn_zap, allowed_key_gets_through)
{
    int err = -1;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    cr_assert_eq(err, SN_OK);
    char ep[256];
    void *r = make_router(ep, sizeof ep);
    void *d = dealer_send(ep, cluster);
    char user[64];
    cr_assert(router_got_hello(r, 5000, user, sizeof user),
              "the allowed client got nothing through");
    cr_assert_str_eq(user, "n1", "User-Id is the node name the allow list gives the key");
    cr_assert_eq(sn_zap_admitted(z), 1);
    cr_assert_eq(sn_zap_refused(z), 0);
    sock_close(d);
    sock_close(r);
    zap_stop(&z);
    cr_assert_null(z);
    zap_stop(&z); /* NULL is fine */
}

Test(sn_zap, unknown_key_is_refused_and_logged)
{
    int err;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    char ep[256];
    void *r = make_router(ep, sizeof ep);
    void *d = dealer_send(ep, stranger);
    cr_assert(wait_refused(z, 1), "no refusal counted");
    cr_assert_not(router_got_hello(r, 500, NULL, 0), "an unknown key got a message through");
    cr_assert_eq(sn_zap_admitted(z), 0);

    char want[128];
    snprintf(want, sizeof want, "refused peer 127.0.0.1: key %.8s not allowed",
             sn_curve_keys_public(stranger));
    cr_assert(strstr(log_text(), want), "log: %s", log_text());

    /* The allowed client still gets in alongside. */
    void *ok = dealer_send(ep, cluster);
    cr_assert(router_got_hello(r, 5000, NULL, 0));
    sock_close(ok);
    sock_close(d);
    sock_close(r);
    zap_stop(&z);
}

Test(sn_zap, null_mechanism_is_refused)
{
    int err;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    char ep[256];
    void *r = make_router(ep, sizeof ep);
    void *d = dealer_send(ep, NULL);
    /* libzmq itself refuses a NULL client on a CURVE server (mechanism mismatch in the
     * greeting), before any ZAP request: nothing arrives and nothing is counted. */
    cr_assert_not(router_got_hello(r, 1000, NULL, 0), "a NULL client got a message through");
    cr_assert_eq(sn_zap_admitted(z), 0);
    cr_assert_eq(sn_zap_refused(z), 0);
    sock_close(d);

    /* PLAIN is refused the same way. */
    d = socket_linger0(ZMQ_DEALER);
    zmq_setsockopt(d, ZMQ_PLAIN_USERNAME, "admin", 5);
    zmq_setsockopt(d, ZMQ_PLAIN_PASSWORD, "admin", 5);
    cr_assert_eq(zmq_connect(d, ep), 0);
    cr_assert_eq(zmq_send(d, "hello", 5, 0), 5);
    cr_assert_not(router_got_hello(r, 1000, NULL, 0), "a PLAIN client got a message through");
    cr_assert_eq(sn_zap_admitted(z), 0);
    cr_assert_eq(sn_zap_refused(z), 0);
    sock_close(d);
    sock_close(r);
    zap_stop(&z);
}

Test(sn_zap, fails_closed_without_handler)
{
    int err;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    char ep[256];
    void *r = make_router(ep, sizeof ep);
    void *before = dealer_send(ep, cluster);
    cr_assert(router_got_hello(r, 5000, NULL, 0));

    zap_stop(&z);

    /* A new allowed client is not admitted: the ROUTER enforces its ZAP domain and nobody is
     * bound to inproc://zeromq.zap.01 any more. */
    void *after = dealer_send(ep, cluster);
    cr_assert_not(router_got_hello(r, 1500, NULL, 0), "admitted with no ZAP handler");

    /* A connection admitted before keeps working: the handler is consulted at handshake only. */
    cr_assert_eq(zmq_send(before, "hello", 5, 0), 5);
    cr_assert(router_got_hello(r, 5000, NULL, 0));

    /* A handler started again admits the waiting client on its next reconnect. */
    z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    cr_assert(router_got_hello(r, 10000, NULL, 0), "not admitted after the handler came back");
    sock_close(before);
    sock_close(after);
    sock_close(r);
    zap_stop(&z);
}

Test(sn_zap, fails_closed_when_never_started)
{
    char ep[256];
    void *r = make_router(ep, sizeof ep);
    void *d = dealer_send(ep, cluster);
    cr_assert_not(router_got_hello(r, 1500, NULL, 0), "admitted with no ZAP handler");
    sock_close(d);
    sock_close(r);
}

/* Why ZMQ_ZAP_ENFORCE_DOMAIN matters: without it libzmq 4.3 admits any CURVE client that knows
 * the server key when no handler is bound. This pins that behaviour so a libzmq change shows. */
Test(sn_zap, without_enforce_libzmq_fails_open)
{
    void *r = socket_linger0(ZMQ_ROUTER);
    cr_assert_eq(sn_curve_server(r, cluster), SN_OK);
    int zero = 0;
    cr_assert_eq(zmq_setsockopt(r, 93 /* ZMQ_ZAP_ENFORCE_DOMAIN */, &zero, sizeof zero), 0);
    cr_assert_eq(zmq_bind(r, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t len = sizeof ep;
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, ep, &len);
    void *d = dealer_send(ep, stranger);
    cr_expect(router_got_hello(r, 5000, NULL, 0),
              "libzmq now refuses without a handler even unenforced; update docs/security.md");
    sock_close(d);
    sock_close(r);
}

Test(sn_zap, one_handler_per_context)
{
    int err;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    sn_zap *z2 = zap_start(ctx, allow, logger, &err);
    cr_assert_null(z2);
    cr_assert_eq(err, SN_EINVAL);
    cr_assert(strstr(log_text(), "another ZAP handler"), "log: %s", log_text());
    zap_stop(&z);
}

Test(sn_zap, destroy_after_context_shutdown)
{
    int err;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    zmq_ctx_shutdown(ctx);
    zap_stop(&z); /* must not hang */
    cr_assert_null(z);
}

/* Sends one raw ZAP request (frames after the delimiter) and reads the six reply frames. */
static void zap_ask(void *req, const char *const *frames, const size_t *lens, int n,
                    char reply[6][64])
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(zmq_send(req, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0), (int)lens[i]);
    for (int i = 0; i < 6; i++) {
        int got = zmq_recv(req, reply[i], 63, 0);
        cr_assert(got >= 0, "reply frame %d", i);
        reply[i][got < 63 ? got : 63] = '\0';
        int more = 0;
        size_t ml = sizeof more;
        zmq_getsockopt(req, ZMQ_RCVMORE, &more, &ml);
        cr_assert_eq(more, i < 5, "frame %d more=%d", i, more);
    }
}

Test(sn_zap, protocol_answers)
{
    int err;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    void *req = socket_linger0(ZMQ_REQ);
    cr_assert_eq(zmq_connect(req, "inproc://zeromq.zap.01"), 0);

    uint8_t good[32], bad[32];
    cr_assert_not_null(zmq_z85_decode(good, sn_curve_keys_public(cluster)));
    cr_assert_not_null(zmq_z85_decode(bad, sn_curve_keys_public(stranger)));
    char reply[6][64];

    const char *curve_ok[] = {"1.0", "17",    SN_CURVE_ZAP_DOMAIN, "10.0.0.9",
                              "",    "CURVE", (const char *)good};
    size_t curve_lens[] = {3, 2, strlen(SN_CURVE_ZAP_DOMAIN), 8, 0, 5, 32};
    zap_ask(req, curve_ok, curve_lens, 7, reply);
    cr_assert_str_eq(reply[0], "1.0");
    cr_assert_str_eq(reply[1], "17");
    cr_assert_str_eq(reply[2], "200");
    cr_assert_str_eq(reply[4], "n1");

    const char *curve_bad[] = {"1.0", "18",    SN_CURVE_ZAP_DOMAIN, "10.0.0.9",
                               "",    "CURVE", (const char *)bad};
    zap_ask(req, curve_bad, curve_lens, 7, reply);
    cr_assert_str_eq(reply[1], "18");
    cr_assert_str_eq(reply[2], "400");
    cr_assert_str_eq(reply[4], "");

    const char *plain[] = {"1.0",   "19",   SN_CURVE_ZAP_DOMAIN, "10.0.0.9", "", "PLAIN",
                           "admin", "admin"};
    size_t plain_lens[] = {3, 2, strlen(SN_CURVE_ZAP_DOMAIN), 8, 0, 5, 5, 5};
    zap_ask(req, plain, plain_lens, 8, reply);
    cr_assert_str_eq(reply[2], "400");

    const char *null_mech[] = {"1.0", "20", SN_CURVE_ZAP_DOMAIN, "10.0.0.9", "", "NULL"};
    size_t null_lens[] = {3, 2, strlen(SN_CURVE_ZAP_DOMAIN), 8, 0, 4};
    zap_ask(req, null_mech, null_lens, 6, reply);
    cr_assert_str_eq(reply[2], "400");

    const char *other_domain[] = {"1.0", "21",    "global",          "10.0.0.9",
                                  "",    "CURVE", (const char *)good};
    size_t other_lens[] = {3, 2, 6, 8, 0, 5, 32};
    zap_ask(req, other_domain, other_lens, 7, reply);
    cr_assert_str_eq(reply[2], "400");

    const char *bad_version[] = {"2.0", "22",    SN_CURVE_ZAP_DOMAIN, "10.0.0.9",
                                 "",    "CURVE", (const char *)good};
    zap_ask(req, bad_version, curve_lens, 7, reply);
    cr_assert_str_eq(reply[2], "400");

    const char *short_key[] = {"1.0", "23",    SN_CURVE_ZAP_DOMAIN, "10.0.0.9",
                               "",    "CURVE", (const char *)good};
    size_t short_lens[] = {3, 2, strlen(SN_CURVE_ZAP_DOMAIN), 8, 0, 5, 31};
    zap_ask(req, short_key, short_lens, 7, reply);
    cr_assert_str_eq(reply[2], "400");

    const char *garbage[] = {"x"};
    size_t garbage_lens[] = {1};
    zap_ask(req, garbage, garbage_lens, 1, reply);
    cr_assert_str_eq(reply[2], "400");

    cr_assert_eq(sn_zap_admitted(z), 1);
    cr_assert_eq(sn_zap_refused(z), 7);
    const char *log = log_text();
    cr_assert(strstr(log, "refused peer 10.0.0.9: mechanism PLAIN not allowed"), "%s", log);
    cr_assert(strstr(log, "refused peer 10.0.0.9: mechanism NULL not allowed"), "%s", log);
    cr_assert(strstr(log, "refused peer 10.0.0.9: ZAP domain \"global\""), "%s", log);
    cr_assert(strstr(log, "admitted peer 10.0.0.9"), "%s", log);
    sock_close(req);
    zap_stop(&z);
}

Test(sn_zap, refusal_logs_are_rate_limited)
{
    int err;
    sn_zap *z = zap_start(ctx, allow, logger, &err);
    cr_assert_not_null(z);
    void *req = socket_linger0(ZMQ_REQ);
    cr_assert_eq(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
    uint8_t bad[32];
    cr_assert_not_null(zmq_z85_decode(bad, sn_curve_keys_public(stranger)));
    const char *frames[] = {"1.0", "1",     SN_CURVE_ZAP_DOMAIN, "10.0.0.9",
                            "",    "CURVE", (const char *)bad};
    size_t lens[] = {3, 1, strlen(SN_CURVE_ZAP_DOMAIN), 8, 0, 5, 32};
    char reply[6][64];
    for (int i = 0; i < 200; i++)
        zap_ask(req, frames, lens, 7, reply);
    cr_assert_eq(sn_zap_refused(z), 200);
    sock_close(req);
    zap_stop(&z); /* flushes the count of unlogged refusals */
    const char *log = log_text();
    size_t lines = 0;
    for (const char *p = log; (p = strstr(p, "not allowed")); p++)
        lines++;
    cr_assert(lines <= 30, "%zu refusal lines logged", lines);
    cr_assert(strstr(log, "more refusals not logged"), "%s", log);
}
