/* sn_curl: libcurl's multi "socket" interface on libev. libcurl says which sockets it waits
 * on (on_socket: one ev_io each) and when it next needs a call (on_timer: one ev_timer);
 * both call curl_multi_socket_action, then finished transfers are collected (collect).
 * Requests cross from worker threads through the loop's command FIFO; each holds one unit
 * of the loop's pending work from submit to done, so a standalone node waits for it. */
#include "sn_curl.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { LIMIT_TIMEOUT, LIMIT_BODY, LIMIT_REDIRECTS, LIMIT_KINDS };

struct sn_curl {
    sn_loop *loop;
    struct ev_loop *ev;
    sn_log *log;
    sn_curl_limits lim;
    CURLM *multi;
    ev_timer timer;
    atomic_long in_flight;
    sn_curl_req *active; /* loop thread: requests added to multi, for destroy */
    /* a limit hit is logged at most once a second per limit, with how many were not */
    double logged_at[LIMIT_KINDS]; /* loop thread (timeout, body, redirects) */
    unsigned unlogged[LIMIT_KINDS];
    atomic_long refused_logged_ms; /* any thread (requests) */
    atomic_long refused_unlogged;
};

struct sn_curl_req {
    sn_loop_cmd cmd; /* first: the command is the request */
    sn_curl *c;
    CURL *easy;
    char *url, *body, *ca;
    size_t body_len;
    int post;
    struct curl_slist *headers;
    long timeout_ms, body_max, redirects; /* < 0: the node's */
    sn_curl_done done;
    void *ud;
    char *data; /* the response body */
    size_t len, cap;
    int over_body;
    char err[CURL_ERROR_SIZE];
    sn_curl_req *prev, *next; /* in c->active */
};

/* One socket libcurl waits on. */
typedef struct sock_watch {
    ev_io io;
    sn_curl *c;
} sock_watch;

static void collect(sn_curl *c);

static void req_free(sn_curl_req *q)
{
    if (q->easy) curl_easy_cleanup(q->easy);
    curl_slist_free_all(q->headers);
    free(q->url);
    free(q->body);
    free(q->ca);
    free(q->data);
    free(q);
}

sn_curl_req *sn_curl_req_new(const char *url, sn_curl_done done, void *ud)
{
    sn_curl_req *q = calloc(1, sizeof *q);
    if (!q || !(q->url = strdup(url))) {
        free(q);
        return NULL;
    }
    q->done = done;
    q->ud = ud;
    q->timeout_ms = q->body_max = q->redirects = -1;
    return q;
}

int sn_curl_req_header(sn_curl_req *q, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line) return SN_ENOMEM;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(q->headers, line);
    free(line);
    if (!l) return SN_ENOMEM;
    q->headers = l;
    return SN_OK;
}

int sn_curl_req_body(sn_curl_req *q, const void *data, size_t len)
{
    char *b = malloc(len ? len : 1);
    if (!b) return SN_ENOMEM;
    if (len) memcpy(b, data, len);
    free(q->body);
    q->body = b;
    q->body_len = len;
    q->post = 1;
    return SN_OK;
}

int sn_curl_req_ca(sn_curl_req *q, const char *path)
{
    char *p = strdup(path);
    if (!p) return SN_ENOMEM;
    free(q->ca);
    q->ca = p;
    return SN_OK;
}

void sn_curl_req_limit(sn_curl_req *q, long timeout_ms, long body_max, long redirects)
{
    q->timeout_ms = timeout_ms;
    q->body_max = body_max;
    q->redirects = redirects;
}

void sn_curl_req_destroy(sn_curl_req **qp)
{
    if (!qp || !*qp) return;
    req_free(*qp);
    *qp = NULL;
}

/* ---- the loop thread ---- */

/* A limit hit by q, logged at most once a second per limit (the rest are counted). */
static void log_limit(sn_curl *c, int kind, const sn_curl_req *q)
{
    static const char *const keys[LIMIT_KINDS] = {"curl_timeout, or the request's timeout",
                                                  "curl_body_max, or the request's max_body",
                                                  "curl_redirects, or the request's max_redirects"};
    double now = sn_clock_mono();
    if (c->logged_at[kind] > 0 && now - c->logged_at[kind] < 1.0) {
        c->unlogged[kind]++;
        return;
    }
    char what[96];
    if (kind == LIMIT_TIMEOUT)
        snprintf(what, sizeof what, "timeout of %ld ms", q->timeout_ms);
    else if (kind == LIMIT_BODY)
        snprintf(what, sizeof what, "response body over %ld bytes", q->body_max);
    else
        snprintf(what, sizeof what, "more than %ld redirects", q->redirects);
    sn_log_write(c->log, SN_LOG_WARN, "curl",
                 "'%s': limit hit: %s (%s); %u more since the last record", q->url, what,
                 keys[kind], c->unlogged[kind]);
    c->logged_at[kind] = now;
    c->unlogged[kind] = 0;
}

/* Ends q: its done callback, then the request is freed and its pending work released. */
static void finish(sn_curl *c, sn_curl_req *q, int code, const char *why)
{
    sn_curl_result r = {.code = code, .url = q->url, .body = q->data, .body_len = q->len};
    char text[CURL_ERROR_SIZE + 200];
    if (q->easy) {
        curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(q->easy, CURLINFO_EFFECTIVE_URL, &r.effective_url);
        curl_easy_getinfo(q->easy, CURLINFO_REDIRECT_URL, &r.redirect_url);
        curl_easy_getinfo(q->easy, CURLINFO_CONTENT_TYPE, &r.content_type);
        curl_easy_getinfo(q->easy, CURLINFO_TOTAL_TIME, &r.seconds);
        curl_off_t speed = 0;
        curl_easy_getinfo(q->easy, CURLINFO_SPEED_DOWNLOAD_T, &speed);
        r.bps = (double)speed;
    }
    int hit = -1;
    if (why) {
        snprintf(text, sizeof text, "%s", why);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        char detail[64];
        snprintf(detail, sizeof detail, "no complete answer within %ld ms", q->timeout_ms);
        sn_error_text(SN_ETIMEDOUT, detail, text, sizeof text);
        hit = LIMIT_TIMEOUT;
    } else if (q->over_body || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf(text, sizeof text, "response body over the limit of %ld bytes", q->body_max);
        hit = LIMIT_BODY;
    } else if (code == CURLE_TOO_MANY_REDIRECTS) {
        snprintf(text, sizeof text, "more than %ld redirects", q->redirects);
        hit = LIMIT_REDIRECTS;
    } else if (code != CURLE_OK && q->err[0]) {
        snprintf(text, sizeof text, "%s: %s", curl_easy_strerror((CURLcode)code), q->err);
    } else {
        snprintf(text, sizeof text, "%s", curl_easy_strerror((CURLcode)code));
    }
    if (hit >= 0) log_limit(c, hit, q);
    if (q->over_body || code == CURLE_FILESIZE_EXCEEDED) {
        r.code = CURLE_FILESIZE_EXCEEDED; /* one code for both ways the limit is seen */
        r.body = NULL;
        r.body_len = 0;
    }
    r.message = text;
    if (code != CURLE_OK) sn_log_write(c->log, SN_LOG_DEBUG, "curl", "'%s': %s", q->url, text);
    q->done(q->ud, &r);
    req_free(q);
    atomic_fetch_sub(&c->in_flight, 1);
    sn_loop_work(c->loop, -1);
    sn_loop_hold(c->loop);
}

static void unlink_active(sn_curl *c, sn_curl_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        c->active = q->next;
    if (q->next) q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sn_curl_req *q = ud;
    size_t len = size * n;
    if (len > (size_t)q->body_max - q->len) {
        q->over_body = 1;
        return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
    }
    if (q->len + len + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + len + 1)
            cap *= 2;
        char *d = realloc(q->data, cap);
        if (!d) return 0;
        q->data = d;
        q->cap = cap;
    }
    memcpy(q->data + q->len, p, len);
    q->len += len;
    q->data[q->len] = '\0';
    return len;
}

/* Builds q's easy handle from its fields and the node's limits. */
static int setup_easy(sn_curl *c, sn_curl_req *q)
{
    if (q->timeout_ms < 0 || q->timeout_ms > c->lim.timeout_ms) q->timeout_ms = c->lim.timeout_ms;
    if (q->body_max < 0 || q->body_max > c->lim.body_max) q->body_max = c->lim.body_max;
    if (q->redirects < 0 || q->redirects > c->lim.redirects) q->redirects = c->lim.redirects;
    CURL *e = q->easy = curl_easy_init();
    if (!e) return CURLE_FAILED_INIT;
    int rc = CURLE_OK;
#define SET(opt, v)                                                                                \
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, v)
    SET(CURLOPT_URL, q->url);
    SET(CURLOPT_PRIVATE, q);
    SET(CURLOPT_ERRORBUFFER, q->err);
    SET(CURLOPT_PROTOCOLS_STR, "http,https"); /* never file://, a script reads no files so */
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_USERAGENT, "stage-node/" SN_VERSION);
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* the body limit counts decoded bytes */
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, q);
    SET(CURLOPT_TIMEOUT_MS, q->timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->body_max);
    SET(CURLOPT_FOLLOWLOCATION, q->redirects > 0 ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, q->redirects);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (q->ca) SET(CURLOPT_CAINFO, q->ca);
    if (q->headers) SET(CURLOPT_HTTPHEADER, q->headers);
    if (q->post) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        SET(CURLOPT_POSTFIELDS, q->body);
        SET(CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL); /* as STAGE does */
    }
#undef SET
    return rc;
}

static void start(sn_loop_cmd *cmd)
{
    sn_curl_req *q = (sn_curl_req *)cmd;
    sn_curl *c = q->c;
    if (sn_loop_stopping(c->loop)) {
        finish(c, q, CURLE_ABORTED_BY_CALLBACK, "the node is stopping");
        return;
    }
    int rc = setup_easy(c, q);
    if (rc != CURLE_OK) {
        finish(c, q, rc, NULL);
        return;
    }
    CURLMcode mc = curl_multi_add_handle(c->multi, q->easy);
    if (mc != CURLM_OK) {
        finish(c, q, CURLE_FAILED_INIT, curl_multi_strerror(mc));
        return;
    }
    q->next = c->active;
    if (c->active) c->active->prev = q;
    c->active = q;
}

static void dropped(sn_loop_cmd *cmd)
{
    sn_curl_req *q = (sn_curl_req *)cmd;
    q->done(q->ud, NULL);
    req_free(q);
}

static void collect(sn_curl *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        sn_curl_req *q = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        int code = m->data.result;
        curl_multi_remove_handle(c->multi, m->easy_handle);
        unlink_active(c, q);
        finish(c, q, code, NULL);
    }
}

static void on_io(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev;
    sn_curl *c = ((sock_watch *)w)->c;
    int flags =
        (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, w->fd, flags, &running); /* may free w */
    collect(c);
}

static void on_timeout(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    sn_curl *c = w->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(c);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sockp)
{
    (void)e;
    sn_curl *c = ud;
    sock_watch *w = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            ev_io_stop(c->ev, &w->io);
            curl_multi_assign(c->multi, s, NULL);
            free(w);
        }
        return 0;
    }
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!w) {
        if (!(w = calloc(1, sizeof *w))) return -1; /* libcurl fails the transfers on this socket */
        w->c = c;
        ev_io_init(&w->io, on_io, s, events);
        curl_multi_assign(c->multi, s, w);
    } else {
        ev_io_stop(c->ev, &w->io);
        ev_io_set(&w->io, s, events);
    }
    ev_io_start(c->ev, &w->io);
    return 0;
}

static int on_timer(CURLM *m, long ms, void *ud)
{
    (void)m;
    sn_curl *c = ud;
    ev_timer_stop(c->ev, &c->timer);
    if (ms >= 0) {
        ev_timer_set(&c->timer, (double)ms / 1000.0, 0.0);
        ev_timer_start(c->ev, &c->timer);
    }
    return 0;
}

/* ---- any thread ---- */

int sn_curl_submit(sn_curl *c, sn_curl_req *q)
{
    long was = atomic_fetch_add(&c->in_flight, 1);
    if (was >= c->lim.requests) {
        atomic_fetch_sub(&c->in_flight, 1);
        long now = (long)(sn_clock_mono() * 1000), last = atomic_load(&c->refused_logged_ms);
        if (last && now - last < 1000) {
            atomic_fetch_add(&c->refused_unlogged, 1);
        } else if (atomic_compare_exchange_strong(&c->refused_logged_ms, &last, now)) {
            sn_log_write(c->log, SN_LOG_WARN, "curl",
                         "'%s' refused: limit hit: %ld requests in flight (curl_requests); "
                         "%ld more since the last record",
                         q->url, c->lim.requests, atomic_exchange(&c->refused_unlogged, 0));
        } else {
            atomic_fetch_add(&c->refused_unlogged, 1);
        }
        return SN_EFULL;
    }
    q->c = c;
    q->cmd.run = start;
    q->cmd.drop = dropped;
    sn_loop_work(c->loop, 1);
    sn_loop_send(c->loop, &q->cmd);
    return SN_OK;
}

long sn_curl_in_flight(sn_curl *c)
{
    return atomic_load(&c->in_flight);
}

const sn_curl_limits *sn_curl_limits_of(sn_curl *c)
{
    return &c->lim;
}

sn_curl *sn_curl_new(sn_loop *loop, sn_log *log, const sn_curl_limits *limits)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        sn_log_write(log, SN_LOG_ERROR, "curl", "curl_global_init failed");
        return NULL;
    }
    sn_curl *c = calloc(1, sizeof *c);
    if (!c || !(c->multi = curl_multi_init())) {
        sn_log_write(log, SN_LOG_ERROR, "curl", "out of memory");
        free(c);
        curl_global_cleanup();
        return NULL;
    }
    c->loop = loop;
    c->ev = sn_loop_ev(loop);
    c->log = log;
    c->lim = *limits;
    atomic_init(&c->in_flight, 0);
    atomic_init(&c->refused_logged_ms, 0);
    atomic_init(&c->refused_unlogged, 0);
    ev_timer_init(&c->timer, on_timeout, 0.0, 0.0);
    c->timer.data = c;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

void sn_curl_destroy(sn_curl **cp)
{
    if (!cp || !*cp) return;
    sn_curl *c = *cp;
    while (c->active) {
        sn_curl_req *q = c->active;
        curl_multi_remove_handle(c->multi, q->easy);
        unlink_active(c, q);
        finish(c, q, CURLE_ABORTED_BY_CALLBACK, "the node is stopping");
    }
    curl_multi_cleanup(c->multi);
    ev_timer_stop(c->ev, &c->timer);
    free(c);
    curl_global_cleanup();
    *cp = NULL;
}
