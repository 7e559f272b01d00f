/* sn_http: a libmicrohttpd daemon with its own polling thread; three routes, each a handler
 * call or the embedded page. Limits: connections, idle timeout, request memory, response size. */
#include "sn_http.h"

#include "sn_error.h"

#include <microhttpd.h>

#include <assert.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Request headers and the connection's buffers must fit in this. */
#define SN_HTTP_CONNECTION_MEMORY (32u * 1024)

struct sn_http {
    struct MHD_Daemon *daemon;
    sn_http_handlers h;
    sn_log *log;
    unsigned port;
};

static const char CT_METRICS[] = "text/plain; version=0.0.4; charset=utf-8";
static const char CT_JSON[] = "application/json";
static const char CT_HTML[] = "text/html; charset=utf-8";
static const char CT_TEXT[] = "text/plain; charset=utf-8";
/* The page may talk to its own origin only: no external fetch can happen even by mistake. */
static const char DASHBOARD_CSP[] = "default-src 'none'; script-src 'unsafe-inline'; "
                                    "style-src 'unsafe-inline'; img-src data:; "
                                    "connect-src 'self'; base-uri 'none'; form-action 'none'";

int sn_http_split_hostport(const char *hostport, char *host, size_t hostcap, unsigned *port)
{
    if (!hostport || !host || hostcap == 0 || !port) return SN_EINVAL;
    const char *colon, *hs, *he;
    if (hostport[0] == '[') {
        hs = hostport + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') return SN_EINVAL;
        colon = he + 1;
    } else {
        hs = hostport;
        colon = strrchr(hostport, ':');
        if (!colon || memchr(hostport, ':', (size_t)(colon - hostport)))
            return SN_EINVAL; /* a bare IPv6 address needs brackets */
        he = colon;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostcap) return SN_EINVAL;
    const char *ps = colon + 1;
    if (!*ps || strlen(ps) > 5) return SN_EINVAL;
    unsigned p = 0;
    for (const char *c = ps; *c; c++) {
        if (*c < '0' || *c > '9') return SN_EINVAL;
        p = p * 10 + (unsigned)(*c - '0');
    }
    if (p > 65535) return SN_EINVAL;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *port = p;
    return SN_OK;
}

/* libmicrohttpd hands its own format strings here; they are not ours to check. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    sn_http *h = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (h->log) sn_log_write(h->log, SN_LOG_WARN, "http", "%s", line);
}
#pragma GCC diagnostic pop

static enum MHD_Result queue(struct MHD_Connection *c, unsigned code, struct MHD_Response *r,
                             const char *type)
{
    if (!r) return MHD_NO; /* out of memory: MHD closes the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r && code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    return queue(c, code, r, CT_TEXT);
}

static enum MHD_Result serve_rendered(sn_http *h, struct MHD_Connection *c, sn_http_render_fn fn,
                                      const char *type, const char *what)
{
    if (!fn) return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    char *body = NULL;
    size_t len = 0;
    int rc = fn(h->h.ud, &body, &len);
    if (rc == SN_OK && len > h->h.max_response) rc = SN_ELIMIT;
    if (rc != SN_OK) {
        free(body);
        if (h->log)
            sn_log_write(h->log, SN_LOG_WARN, "http", "rendering %s failed: %s", what,
                         sn_strerror(rc));
        return queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) free(body);
    return queue(c, MHD_HTTP_OK, r, type);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    sn_http *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sn_dashboard_html_len, (void *)sn_dashboard_html, MHD_RESPMEM_PERSISTENT);
        if (r) MHD_add_response_header(r, "Content-Security-Policy", DASHBOARD_CSP);
        return queue(c, MHD_HTTP_OK, r, CT_HTML);
    }
    if (strcmp(url, "/metrics") == 0)
        return serve_rendered(h, c, h->h.metrics, CT_METRICS, "/metrics");
    if (strcmp(url, "/status.json") == 0)
        return serve_rendered(h, c, h->h.status, CT_JSON, "/status.json");
    return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

sn_http *sn_http_new(const char *hostport, const sn_http_handlers *hs, sn_log *log, int *err)
{
    assert(hs && err && "sn_http_new: NULL argument");
    char host[256];
    unsigned port;
    *err = sn_http_split_hostport(hostport, host, sizeof host, &port);
    if (*err != SN_OK) return NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        if (log)
            sn_log_write(log, SN_LOG_ERROR, "http", "cannot resolve %s: %s", host,
                         gai_strerror(gai));
        if (ai) freeaddrinfo(ai);
        *err = SN_EINVAL;
        return NULL;
    }

    sn_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        *err = SN_ENOMEM;
        return NULL;
    }
    h->h = *hs;
    h->log = log;
    if (!h->h.max_connections) h->h.max_connections = SN_HTTP_DEFAULT_MAX_CONNECTIONS;
    if (!h->h.timeout_s) h->h.timeout_s = SN_HTTP_DEFAULT_TIMEOUT_S;
    if (!h->h.max_response) h->h.max_response = SN_HTTP_DEFAULT_MAX_RESPONSE;

    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
        h, /* first, so that libmicrohttpd never prints on its own */
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, h->h.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, h->h.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)SN_HTTP_CONNECTION_MEMORY, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        if (log) sn_log_write(log, SN_LOG_ERROR, "http", "cannot listen on %s", hostport);
        free(h);
        *err = SN_EIO;
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    if (log) sn_log_write(log, SN_LOG_INFO, "http", "serving on %s (port %u)", hostport, h->port);
    *err = SN_OK;
    return h;
}

void sn_http_destroy(sn_http **hp)
{
    if (!hp || !*hp) return;
    sn_http *h = *hp;
    MHD_stop_daemon(h->daemon);
    free(h);
    *hp = NULL;
}

unsigned sn_http_port(const sn_http *h)
{
    assert(h && "sn_http_port: NULL server");
    return h->port;
}
