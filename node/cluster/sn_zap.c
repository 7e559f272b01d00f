/* sn_zap: the ZAP handler thread. A REP socket on inproc://zeromq.zap.01 answers libzmq's
 * authentication requests; a PAIR control socket tells the thread to stop. */
#include "sn_zap.h"
#include "sn_error.h"

#include <zmq.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

enum {
    ZAP_MAX_FRAMES = 16,      /* a request has 7 for CURVE; more is drained and refused */
    ZAP_LOGS_PER_SECOND = 10, /* refusals logged per second; the rest are counted */
    ZAP_TEXT_MAX = 64         /* longest address or mechanism copied into a log line */
};

struct sn_zap {
    void *handler;    /* REP bound to ZAP_ENDPOINT; the thread's after _new */
    void *ctl_thread; /* PAIR, the thread's end */
    void *ctl_main;   /* PAIR, the owner's end */
    pthread_t thread;
    const sn_curve_allow *allow;
    sn_log *log;
    _Atomic uint64_t admitted, refused;
    sn_log_rate rate; /* the refusals' log lines; the ZAP thread's only */
};

static const char *const MECHANISM_CURVE = "CURVE";

/* Copies a frame into a printable, NUL-terminated string (non-printables become '?'). */
static void frame_text(zmq_msg_t *m, char *out, size_t outlen)
{
    size_t n = zmq_msg_size(m);
    if (n >= outlen) n = outlen - 1;
    const unsigned char *d = zmq_msg_data(m);
    for (size_t i = 0; i < n; i++)
        out[i] = (d[i] >= 0x20 && d[i] < 0x7f) ? (char)d[i] : '?';
    out[n] = '\0';
}

static int frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

__attribute__((format(printf, 2, 3))) static void log_refusal(sn_zap *z, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sn_log_vrated(z->log, &z->rate, SN_LOG_WARN, "zap", fmt, ap);
    va_end(ap);
}

/* Sends one reply frame; 0 or -1 with errno. */
static int send_frame(void *sock, const void *data, size_t n, int more)
{
    return zmq_send(sock, data, n, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

/* Answers one request waiting on the handler socket. Returns -1 when the context is gone. */
static int zap_answer(sn_zap *z)
{
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int n = 0, more = 1, extra = 0;
    while (more) {
        zmq_msg_t *m = n < ZAP_MAX_FRAMES ? &f[n] : NULL;
        zmq_msg_t spill;
        if (!m) {
            m = &spill;
            extra = 1;
        }
        zmq_msg_init(m);
        if (zmq_msg_recv(m, z->handler, 0) < 0) {
            int e = errno;
            zmq_msg_close(m);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
            if (e == EINTR || e == EAGAIN) return 0; /* nothing sent yet, REP still waits */
            return -1;
        }
        more = zmq_msg_more(m);
        if (m == &spill)
            zmq_msg_close(m);
        else
            n++;
    }

    /* Frames: version, request id, domain, address, identity, mechanism, credentials... */
    char address[ZAP_TEXT_MAX] = "?", mechanism[ZAP_TEXT_MAX] = "?";
    if (n > 3) frame_text(&f[3], address, sizeof address);
    if (n > 5) frame_text(&f[5], mechanism, sizeof mechanism);
    char key_z85[SN_CURVE_Z85_LEN + 1] = "";
    const char *user = NULL; /* the node name the key authenticates as */
    int admit = 0;
    const char *status_text = "refused";
    if (extra || n < 6 || !frame_is(&f[0], "1.0")) {
        log_refusal(z, "refused a malformed ZAP request (peer %s)", address);
        status_text = "malformed request";
    } else if (!frame_is(&f[2], SN_CURVE_ZAP_DOMAIN)) {
        char domain[ZAP_TEXT_MAX];
        frame_text(&f[2], domain, sizeof domain);
        log_refusal(z, "refused peer %s: ZAP domain \"%s\" is not " SN_CURVE_ZAP_DOMAIN, address,
                    domain);
        status_text = "unknown domain";
    } else if (!frame_is(&f[5], MECHANISM_CURVE)) {
        log_refusal(z, "refused peer %s: mechanism %s not allowed (CURVE required)", address,
                    mechanism);
        status_text = "CURVE required";
    } else if (n != 7 || zmq_msg_size(&f[6]) != SN_CURVE_KEY_LEN) {
        log_refusal(z, "refused peer %s: malformed CURVE credentials", address);
        status_text = "malformed request";
    } else {
        zmq_z85_encode(key_z85, zmq_msg_data(&f[6]), SN_CURVE_KEY_LEN);
        if ((user = sn_curve_allow_name(z->allow, zmq_msg_data(&f[6]))) != NULL) {
            admit = 1;
            status_text = "OK";
        } else {
            log_refusal(z, "refused peer %s: key %.8s not allowed", address, key_z85);
            status_text = "key not allowed";
        }
    }
    if (admit) {
        atomic_fetch_add(&z->admitted, 1);
        sn_log_write(z->log, SN_LOG_DEBUG, "zap", "admitted peer %s: key %.8s as %s", address,
                     key_z85, user);
    } else {
        atomic_fetch_add(&z->refused, 1);
    }

    /* Reply: version, request id, status code, status text, user id, metadata. The user id
     * (the node name the allow list gives the client's key) reaches the ROUTER as the message
     * property "User-Id" of every frame on that connection: the frame's authenticated source. */
    int rc = send_frame(z->handler, "1.0", 3, 1);
    if (rc == 0) {
        if (n > 1)
            rc = send_frame(z->handler, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), 1);
        else
            rc = send_frame(z->handler, "", 0, 1);
    }
    if (rc == 0) rc = send_frame(z->handler, admit ? "200" : "400", 3, 1);
    if (rc == 0) rc = send_frame(z->handler, status_text, strlen(status_text), 1);
    if (rc == 0) rc = send_frame(z->handler, admit ? user : "", admit ? strlen(user) : 0, 1);
    if (rc == 0) rc = send_frame(z->handler, "", 0, 0);
    int e = errno;
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return rc == 0 || e != ETERM ? 0 : -1;
}

static void *zap_thread(void *arg)
{
    sn_zap *z = arg;
    zmq_pollitem_t items[2] = {{z->handler, 0, ZMQ_POLLIN, 0}, {z->ctl_thread, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break; /* ETERM: the context is shutting down */
        }
        if (items[1].revents & ZMQ_POLLIN) break;
        if ((items[0].revents & ZMQ_POLLIN) && zap_answer(z) < 0) break;
    }
    sn_log_rate_flush(z->log, &z->rate, SN_LOG_WARN, "zap");
    /* zmq_unbind of an inproc endpoint takes effect before it returns (zmq_close only later, in
     * the reaper): from here on an enforcing socket admits nobody. */
    zmq_unbind(z->handler, ZAP_ENDPOINT);
    zmq_close(z->handler);
    zmq_close(z->ctl_thread);
    z->handler = z->ctl_thread = NULL;
    return NULL;
}

static void *socket_linger0(void *zctx, int type)
{
    void *s = zmq_socket(zctx, type);
    int zero = 0;
    if (s) zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    return s;
}

static void close_if(void **s)
{
    if (*s) zmq_close(*s);
    *s = NULL;
}

sn_zap *sn_zap_new(void *zctx, const sn_curve_allow *allow, sn_log *log, int *err)
{
    int dummy;
    if (!err) err = &dummy;
    sn_zap *z = calloc(1, sizeof *z);
    if (!z) {
        *err = SN_ENOMEM;
        return NULL;
    }
    z->allow = allow;
    z->log = log;
    z->rate = (sn_log_rate){.per_second = ZAP_LOGS_PER_SECOND, .what = "refusals"};
    atomic_init(&z->admitted, 0);
    atomic_init(&z->refused, 0);

    char ctl[64];
    snprintf(ctl, sizeof ctl, "inproc://sn-zap-ctl-%p", (void *)z);
    int rc = SN_OK;
    z->handler = socket_linger0(zctx, ZMQ_REP);
    z->ctl_thread = socket_linger0(zctx, ZMQ_PAIR);
    z->ctl_main = socket_linger0(zctx, ZMQ_PAIR);
    if (!z->handler || !z->ctl_thread || !z->ctl_main) {
        sn_log_write(log, SN_LOG_ERROR, "zap", "cannot create ZAP sockets: %s",
                     zmq_strerror(errno));
        rc = errno == ENOMEM ? SN_ENOMEM : SN_EIO;
    } else if (zmq_bind(z->handler, ZAP_ENDPOINT) != 0) {
        int e = errno;
        sn_log_write(log, SN_LOG_ERROR, "zap", "cannot bind %s: %s", ZAP_ENDPOINT,
                     e == EADDRINUSE ? "another ZAP handler runs in this context"
                                     : zmq_strerror(e));
        rc = e == EADDRINUSE ? SN_EINVAL : SN_EIO;
    } else if (zmq_bind(z->ctl_thread, ctl) != 0 || zmq_connect(z->ctl_main, ctl) != 0) {
        sn_log_write(log, SN_LOG_ERROR, "zap", "cannot set up the ZAP control socket: %s",
                     zmq_strerror(errno));
        rc = SN_EIO;
    } else if ((rc = pthread_create(&z->thread, NULL, zap_thread, z)) != 0) {
        sn_log_write(log, SN_LOG_ERROR, "zap", "cannot start the ZAP thread: %s", strerror(rc));
        rc = rc == EAGAIN ? SN_ENOMEM : SN_EIO;
    }
    if (rc != SN_OK) {
        close_if(&z->handler);
        close_if(&z->ctl_thread);
        close_if(&z->ctl_main);
        free(z);
        *err = rc;
        return NULL;
    }
    *err = SN_OK;
    return z;
}

void sn_zap_destroy(sn_zap **zp)
{
    if (!zp || !*zp) return;
    sn_zap *z = *zp;
    /* If the context was shut down the send fails with ETERM, and the thread has seen ETERM
     * in zmq_poll too; either way it leaves its loop. */
    zmq_send(z->ctl_main, "", 0, ZMQ_DONTWAIT);
    pthread_join(z->thread, NULL);
    close_if(&z->ctl_main);
    free(z);
    *zp = NULL;
}

uint64_t sn_zap_admitted(const sn_zap *z)
{
    return atomic_load(&((sn_zap *)z)->admitted);
}

uint64_t sn_zap_refused(const sn_zap *z)
{
    return atomic_load(&((sn_zap *)z)->refused);
}
