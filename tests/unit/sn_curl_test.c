/* sn_curl: requests run on the loop against a real HTTP server in this process
 * (libmicrohttpd); each done callback runs once, with the response or with the limit that
 * stopped it; the in-flight limit refuses at submit; a request never started is dropped
 * (done with NULL) when the loop goes. */
#include "sn_curl.h"
#include "sn_error.h"
#include "sn_loop.h"

#include <criterion/criterion.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

static sn_log *log_;
static sn_loop *loop;
static struct MHD_Daemon *httpd;
static char base[64];

typedef struct got {
    int calls, dropped, code;
    long status;
    char body[256];
    char message[256];
} got;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *len, void **state)
{
    (void)cls, (void)version, (void)data;
    if (!*state) { /* the headers: wait for the body */
        *state = c;
        return MHD_YES;
    }
    if (*len) { /* a piece of the body: take it */
        *len = 0;
        return MHD_YES;
    }
    char body[128];
    snprintf(body, sizeof body, "%s %s", method, url);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static void done(void *ud, const sn_curl_result *r)
{
    got *g = ud;
    g->calls++;
    if (!r) {
        g->dropped++;
        return;
    }
    g->code = r->code;
    g->status = r->status;
    snprintf(g->body, sizeof g->body, "%s", r->body ? r->body : "(none)");
    snprintf(g->message, sizeof g->message, "%s", r->message);
}

static void setup(void)
{
    log_ = sn_log_new(stderr, SN_LOG_ERROR);
    loop = sn_loop_new(log_);
    httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, NULL,
                             MHD_OPTION_END);
    cr_assert(httpd);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(httpd, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)info->port);
}

static void teardown(void)
{
    MHD_stop_daemon(httpd);
    sn_loop_destroy(&loop);
    sn_log_destroy(&log_);
}

TestSuite(sn_curl, .init = setup, .fini = teardown);

static sn_curl *driver(long requests, long body_max)
{
    sn_curl_limits lim = {
        .timeout_ms = 5000, .body_max = body_max, .redirects = 2, .requests = requests};
    sn_curl *c = sn_curl_new(loop, log_, &lim);
    cr_assert(c);
    return c;
}

static void submit(sn_curl *c, const char *path, const char *post, got *g)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", base, path);
    sn_curl_req *q = sn_curl_req_new(url, done, g);
    cr_assert(q);
    if (post) cr_assert_eq(sn_curl_req_body(q, post, strlen(post)), SN_OK);
    cr_assert_eq(sn_curl_submit(c, q), SN_OK);
}

Test(sn_curl, get_and_post_run_on_the_loop)
{
    sn_curl *c = driver(8, 1000);
    got g1 = {0}, g2 = {0};
    submit(c, "/a", NULL, &g1);
    submit(c, "/b", "x=1", &g2);
    cr_assert_eq(sn_curl_in_flight(c), 2);
    sn_loop_run(loop); /* returns once both are done: each held the loop's pending work */
    cr_assert_eq(g1.calls, 1);
    cr_assert_eq(g1.code, 0);
    cr_assert_eq(g1.status, 200);
    cr_assert_str_eq(g1.body, "GET /a");
    cr_assert_str_eq(g2.body, "POST /b");
    cr_assert_eq(sn_curl_in_flight(c), 0);
    sn_curl_destroy(&c);
    cr_assert_null(c);
}

Test(sn_curl, body_over_the_limit_has_no_body)
{
    sn_curl *c = driver(8, 4);
    got g = {0};
    submit(c, "/long", NULL, &g);
    sn_loop_run(loop);
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.code, 63);
    cr_assert_str_eq(g.body, "(none)");
    cr_assert_str_eq(g.message, "response body over the limit of 4 bytes");
    sn_curl_destroy(&c);
}

Test(sn_curl, the_in_flight_limit_refuses_at_submit)
{
    sn_curl *c = driver(1, 1000);
    got g1 = {0}, g2 = {0};
    submit(c, "/a", NULL, &g1);
    char url[128];
    snprintf(url, sizeof url, "%s/b", base);
    sn_curl_req *q = sn_curl_req_new(url, done, &g2);
    cr_assert_eq(sn_curl_submit(c, q), SN_EFULL);
    sn_curl_req_destroy(&q);
    cr_assert_null(q);
    sn_loop_run(loop);
    cr_assert_eq(g1.calls, 1);
    cr_assert_eq(g2.calls, 0);
    sn_curl_destroy(&c);
}

Test(sn_curl, a_request_never_started_is_dropped_with_the_loop)
{
    sn_curl *c = driver(8, 1000);
    got g = {0};
    submit(c, "/a", NULL, &g); /* queued for the loop, which never runs */
    sn_curl_destroy(&c);
    sn_loop_destroy(&loop);
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.dropped, 1);
}

Test(sn_curl, only_http_and_https)
{
    sn_curl *c = driver(8, 1000);
    got g = {0};
    sn_curl_req *q = sn_curl_req_new("file:///etc/hostname", done, &g);
    cr_assert_eq(sn_curl_submit(c, q), SN_OK);
    sn_loop_run(loop);
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.code, 1); /* CURLE_UNSUPPORTED_PROTOCOL */
    cr_assert_str_eq(g.body, "(none)");
    sn_curl_destroy(&c);
}
