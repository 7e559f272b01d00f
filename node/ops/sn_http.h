/* sn_http: the node's HTTP endpoint (/metrics, /status.json, the dashboard at /), served by
 * libmicrohttpd on its own thread; it only calls the handlers it is given, never touches actors. */
#ifndef SN_HTTP_H
#define SN_HTTP_H

#include "sn_log.h"

#include <stddef.h>

typedef struct sn_http sn_http;

/* A body renderer: on SN_OK *body is a malloc'd buffer of *len bytes that the server owns
 * (it free()s it); any other result answers 500. Called on the HTTP thread, one request at a
 * time: it must only read thread-safe data and must not block. */
typedef int (*sn_http_render_fn)(void *ud, char **body, size_t *len);

#define SN_HTTP_DEFAULT_MAX_CONNECTIONS 256
#define SN_HTTP_DEFAULT_MAX_PER_IP      128
#define SN_HTTP_DEFAULT_TIMEOUT_S       10
#define SN_HTTP_DEFAULT_REQUEST_S       5
#define SN_HTTP_DEFAULT_MAX_RESPONSE    (16u << 20)

typedef struct sn_http_handlers {
    sn_http_render_fn metrics; /* GET /metrics, text/plain; version=0.0.4; NULL answers 404 */
    sn_http_render_fn status;  /* GET /status.json, application/json; NULL answers 404 */
    void *ud;                  /* passed to both */
    unsigned max_connections;  /* open connections at once; 0: the default (256) */
    unsigned max_per_ip;       /* of them from one address; 0: the default (128, at most
                                * max_connections) */
    unsigned timeout_s;        /* an idle connection is closed after it; 0: the default (10) */
    unsigned request_s;        /* a connection gets this long for each request, from its
                                * first byte awaited to its response sent, however slowly
                                * it trickles (a slow client cannot hold a slot); then it is
                                * closed, logged. 0: the default (5) */
    size_t max_response;       /* a larger rendered body answers 500; 0: the default (16 MiB) */
    const char *root;          /* a folder whose files are served at /app/ (--http-root), or
                                * NULL; a path leaving it (.., hidden names, links out) is 403 */
} sn_http_handlers;

/* sn_http_new: listens on hostport ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one) and
 * serves on its own thread until destroyed: GET|HEAD / (the dashboard), /metrics,
 * /status.json, and with h->root the files of that folder at /app/ ("/app/" is index.html);
 * other paths 404, other methods 405. h is copied; log (not owned, may be NULL) must outlive
 * the server. NULL with *err = SN_EINVAL (bad hostport), SN_EIO (cannot bind; logged),
 * SN_ENOENT (h->root is not a readable folder; logged), SN_ENOMEM. */
sn_http *sn_http_new(const char *hostport, const sn_http_handlers *h, sn_log *log, int *err);
/* sn_http_destroy: stops the thread, closes every connection, frees *hp and nulls it; NULL is
 * fine. Not from a handler. */
void sn_http_destroy(sn_http **hp);
/* sn_http_port: the TCP port the server listens on (the one picked when asked for 0). */
unsigned sn_http_port(const sn_http *h);

/* sn_http_split_hostport: "HOST:PORT" or "[V6]:PORT" -> host (NUL-terminated, at most
 * hostcap bytes with the NUL) and port. SN_EINVAL for anything else or a port > 65535. */
int sn_http_split_hostport(const char *hostport, char *host, size_t hostcap, unsigned *port);

/* sn_http_path_ok: 1 when rel (the part of a URL after /app/, already percent-decoded) may
 * name a file under the root: relative, no empty, ".", ".." or dot-first segment, no
 * backslash or control byte, under 1024 bytes; else 0. */
int sn_http_path_ok(const char *rel);

/* The dashboard page (node/dashboard.html), embedded at build time; NUL-terminated, the
 * length excludes the NUL. */
extern const char sn_dashboard_html[];
extern const size_t sn_dashboard_html_len;

#endif
