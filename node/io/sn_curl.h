/* sn_curl: HTTP requests on libcurl's multi interface, driven by the node's libev loop: any
 * thread hands a request over, the loop thread runs every transfer, and each request's done
 * callback runs once on the loop thread. It knows no Lua and no actor: who waits for the
 * answer lives in the callback's ud. */
#ifndef SN_CURL_H
#define SN_CURL_H

#include "sn_log.h"
#include "sn_loop.h"

#include <stddef.h>

typedef struct sn_curl sn_curl;
typedef struct sn_curl_req sn_curl_req;

/* The node's limits (docs/node.md, --set curl_*); a request may ask for less, never more. */
typedef struct sn_curl_limits {
    long timeout_ms; /* the whole transfer, connect included (curl_timeout, 10000) */
    long body_max;   /* response body bytes kept (curl_body_max, 8 MiB) */
    long redirects;  /* Location hops followed (curl_redirects, 5; 0: none) */
    long requests;   /* requests in flight in the node (curl_requests, 1024) */
} sn_curl_limits;

/* What one request came to, for its done callback (valid during the callback only). */
typedef struct sn_curl_result {
    int code;                  /* CURLcode: 0 for a complete response, whatever its status */
    const char *message;       /* "No error", or what failed, with the limit hit if one was */
    long status;               /* HTTP status of the last response, 0 when none */
    const char *url;           /* as asked */
    const char *effective_url; /* after redirects, or NULL */
    const char *redirect_url;  /* a Location not followed, or NULL */
    const char *content_type;  /* or NULL */
    const char *body;          /* the body (NUL-terminated after body_len), or NULL */
    size_t body_len;
    double seconds; /* total transfer time */
    double bps;     /* download speed, bytes per second */
} sn_curl_result;

/* done: loop thread, once per submitted request. r == NULL: the request was dropped unrun
 * while the node shut down: free ud and touch nothing else. */
typedef void (*sn_curl_done)(void *ud, const sn_curl_result *r);

/* sn_curl_new: a driver on loop (which must outlive it), logging to log. NULL on failure
 * (logged). Main thread. */
sn_curl *sn_curl_new(sn_loop *loop, sn_log *log, const sn_curl_limits *limits);
/* sn_curl_destroy: ends the transfers in flight (their done gets "the node is stopping"),
 * frees the driver; NULL is fine; nulls *cp. Main thread, after the loop stopped running. */
void sn_curl_destroy(sn_curl **cp);
/* sn_curl_limits_of: the node's limits. Any thread. */
const sn_curl_limits *sn_curl_limits_of(sn_curl *c);

/* sn_curl_req_new: a request for url (copied; http and https only) whose done(ud, r) runs
 * on the loop thread. NULL on out of memory. Caller owns it until sn_curl_submit. */
sn_curl_req *sn_curl_req_new(const char *url, sn_curl_done done, void *ud);
/* sn_curl_req_header: adds "name: value". sn_curl_req_body: makes it a POST of data[0..len)
 * (copied). sn_curl_req_ca: verifies the server against the CA file path (copied) instead
 * of the system's. Each returns SN_OK or SN_ENOMEM. */
int sn_curl_req_header(sn_curl_req *q, const char *name, const char *value);
int sn_curl_req_body(sn_curl_req *q, const void *data, size_t len);
int sn_curl_req_ca(sn_curl_req *q, const char *path);
/* sn_curl_req_limit: this request's timeout, body limit and redirect limit; a value < 0, or
 * above the node's limit, keeps the node's. */
void sn_curl_req_limit(sn_curl_req *q, long timeout_ms, long body_max, long redirects);
/* sn_curl_req_destroy: frees a request never submitted (not its ud); NULL is fine. */
void sn_curl_req_destroy(sn_curl_req **qp);

/* sn_curl_submit: queues q for the loop thread. SN_OK (q consumed: done will run), or
 * SN_EFULL when the node already has its limit of requests in flight (logged; the caller
 * still owns q). Any thread. */
int sn_curl_submit(sn_curl *c, sn_curl_req *q);
/* sn_curl_in_flight: requests submitted and not done. Any thread. */
long sn_curl_in_flight(sn_curl *c);

#endif
