/* sn_http: a libmicrohttpd daemon with its own polling thread; three routes, each a handler
 * call or the embedded page, and the files of one folder at /app/ when given one. Limits: connections (in all and per address), idle timeout, a
 * deadline per request, request memory, response size. libmicrohttpd's timeout is for
 * idleness only: a client sending a header line every few seconds kept its slot forever, so
 * a reaper thread shuts down the socket of a connection past its request deadline. */
#include "sn_http.h"

#include "sn_clock.h"
#include "sn_error.h"

#include <microhttpd.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Request headers and the connection's buffers must fit in this. */
#define SN_HTTP_CONNECTION_MEMORY (32u * 1024)

/* One open connection, for the reaper: its socket and when its current request began. */
typedef struct conn {
    struct conn *prev, *next;
    int fd;
    double since; /* monotonic s: accepted, or its last response completed */
    int cut;      /* shut down by the reaper already */
} conn;

struct sn_http {
    struct MHD_Daemon *daemon;
    sn_http_handlers h;
    sn_log *log;
    unsigned port;
    char *root; /* the real path of handlers.root, or NULL: no files served */
    pthread_t reaper;
    int reaping;          /* the reaper thread runs */
    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    int stop;
    conn *conns;
    unsigned long cut_total, cut_unlogged;
    double logged_at;
    double mhd_window;         /* libmicrohttpd's own messages: this window's start, */
    int mhd_lines;             /* the lines logged in it */
    unsigned long mhd_dropped; /* and those left out */
};

enum { MHD_LOG_LINES = 5, MHD_LOG_WINDOW_S = 10 };

enum { REAP_LOG_EVERY_S = 10 }; /* at most one line about slow clients per this */

/* libmicrohttpd's thread: a connection opened or closed. Closed comes before its socket is
 * closed, so the reaper (under the same lock) never shuts down a reused descriptor. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    sn_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *k = ci ? calloc(1, sizeof *k) : NULL;
        *socket_context = k;
        if (!k) return; /* out of memory: this one goes unreaped; the idle timeout remains */
        k->fd = ci->connect_fd;
        k->since = sn_clock_mono();
        pthread_mutex_lock(&h->lock);
        k->next = h->conns;
        if (h->conns) h->conns->prev = k;
        h->conns = k;
        pthread_mutex_unlock(&h->lock);
    } else if (*socket_context) {
        conn *k = *socket_context;
        pthread_mutex_lock(&h->lock);
        if (k->prev)
            k->prev->next = k->next;
        else
            h->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        pthread_mutex_unlock(&h->lock);
        free(k);
        *socket_context = NULL;
    }
}

/* libmicrohttpd's thread: a response was sent (or the request failed): on a kept-alive
 * connection the next request's deadline starts now. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)con_cls, (void)toe;
    sn_http *h = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn *k = ci ? ci->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&h->lock);
    k->since = sn_clock_mono();
    pthread_mutex_unlock(&h->lock);
}

/* Shuts down every connection past its request deadline: libmicrohttpd then sees the end
 * of the stream and closes it, freeing its slot. Logs how many, at most every 10 s. */
static void *reap(void *p)
{
    sn_http *h = p;
    double every = h->h.request_s / 4.0 < 1.0 ? h->h.request_s / 4.0 : 1.0;
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        struct timespec until;
        sn_clock_deadline(&until, (int64_t)(every * 1e9));
        pthread_cond_timedwait(&h->wake, &h->lock, &until);
        if (h->stop) break;
        double now = sn_clock_mono();
        for (conn *k = h->conns; k; k = k->next) {
            if (k->cut || now - k->since <= (double)h->h.request_s) continue;
            shutdown(k->fd, SHUT_RDWR);
            k->cut = 1;
            h->cut_total++;
            h->cut_unlogged++;
        }
        if (h->cut_unlogged && now - h->logged_at >= REAP_LOG_EVERY_S) {
            if (h->log)
                sn_log_write(h->log, SN_LOG_WARN, "http",
                             "closed %lu connections that took "
                             "longer than %u s for a request (%lu in all)",
                             h->cut_unlogged, h->h.request_s, h->cut_total);
            h->cut_unlogged = 0;
            h->logged_at = now;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

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
    if (!h->log) return;
    /* a line per misbehaving client would let clients flood the log: a few per window */
    double now = sn_clock_mono();
    unsigned long dropped = 0;
    int tell;
    pthread_mutex_lock(&h->lock);
    if (now - h->mhd_window >= MHD_LOG_WINDOW_S) {
        dropped = h->mhd_dropped;
        h->mhd_window = now;
        h->mhd_lines = h->mhd_dropped = 0;
    }
    tell = h->mhd_lines < MHD_LOG_LINES;
    if (tell)
        h->mhd_lines++;
    else
        h->mhd_dropped++;
    pthread_mutex_unlock(&h->lock);
    if (dropped)
        sn_log_write(h->log, SN_LOG_WARN, "http",
                     "%lu more libmicrohttpd messages not logged "
                     "(at most %d per %d s)",
                     dropped, MHD_LOG_LINES, MHD_LOG_WINDOW_S);
    if (tell) sn_log_write(h->log, SN_LOG_WARN, "http", "%s", line);
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

/* Static files (handlers.root) are served under this prefix; the page may open WebSockets to
 * any host (the broker listens on its own port) but loads nothing from elsewhere. */
static const char FILES_PREFIX[] = "/app/";
static const char FILES_CSP[] = "default-src 'self'; connect-src 'self' ws: wss:; "
                                "img-src 'self' data:; base-uri 'none'; form-action 'none'";
enum { FILES_PATH_MAX = 1024 };

static const char *type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", CT_HTML}, {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"}, {".json", CT_JSON},
                 {".svg", "image/svg+xml"}, {".png", "image/png"},
                 {".ico", "image/x-icon"}, {".txt", CT_TEXT}};
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

int sn_http_path_ok(const char *rel)
{
    if (!rel || !*rel || strlen(rel) >= FILES_PATH_MAX || rel[0] == '/') return 0;
    const char *seg = rel;
    for (const char *p = rel;; p++) {
        if (*p == '/' || *p == '\0') {
            /* an empty segment, ".", ".." and hidden files are refused alike */
            if (p == seg || seg[0] == '.') return 0;
            if (!*p) return 1;
            seg = p + 1;
        } else if ((unsigned char)*p < 0x20 || *p == '\\' || *p == 0x7f) {
            return 0;
        }
    }
}

/* GET /app/REL: the file REL under the root, when REL is a plain relative path whose real
 * path (symbolic links resolved) stays under the root; "/app/" is index.html. 403 for a
 * refused path, 404 for a missing one, 500 past max_response. */
static enum MHD_Result serve_file(sn_http *h, struct MHD_Connection *c, const char *url)
{
    const char *rel = url + strlen(FILES_PREFIX);
    if (!*rel) rel = "index.html";
    if (!sn_http_path_ok(rel)) return queue_text(c, MHD_HTTP_FORBIDDEN, "path refused\n");
    char joined[PATH_MAX + FILES_PATH_MAX + 2], real[PATH_MAX];
    snprintf(joined, sizeof joined, "%s/%s", h->root, rel);
    if (!realpath(joined, real)) return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    size_t rl = strlen(h->root);
    if (strncmp(real, h->root, rl) != 0 || real[rl] != '/')
        return queue_text(c, MHD_HTTP_FORBIDDEN, "path refused\n"); /* a link out of the root */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    if ((size_t)st.st_size > h->h.max_response) {
        close(fd);
        if (h->log)
            sn_log_write(h->log, SN_LOG_WARN, "http", "%s is over the response limit (%zu bytes)",
                         rel, h->h.max_response);
        return queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Security-Policy", FILES_CSP);
    return queue(c, MHD_HTTP_OK, r, type_of(rel));
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* libmicrohttpd's thread: %XX-decodes a URL in place. A decoded NUL would cut the path short
 * ("/app/%00../x" read as "/app/"), so it becomes 0x01, which every route refuses. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    char *w = s;
    for (const char *r = s; *r; w++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
            *w = (char)(hi * 16 + lo);
            if (*w == '\0') *w = 0x01;
            r += 3;
        } else {
            *w = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
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
    if (h->root && strncmp(url, FILES_PREFIX, strlen(FILES_PREFIX)) == 0)
        return serve_file(h, c, url);
    if (h->root && strcmp(url, "/app") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r) MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, FILES_PREFIX);
        return queue(c, MHD_HTTP_MOVED_PERMANENTLY, r, CT_TEXT);
    }
    return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void free_server(sn_http *h)
{
    free(h->root);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    free(h);
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
    h->logged_at = h->mhd_window = -1e9;
    if (!h->h.max_connections) h->h.max_connections = SN_HTTP_DEFAULT_MAX_CONNECTIONS;
    if (!h->h.max_per_ip) h->h.max_per_ip = SN_HTTP_DEFAULT_MAX_PER_IP;
    if (h->h.max_per_ip > h->h.max_connections) h->h.max_per_ip = h->h.max_connections;
    if (!h->h.timeout_s) h->h.timeout_s = SN_HTTP_DEFAULT_TIMEOUT_S;
    if (!h->h.request_s) h->h.request_s = SN_HTTP_DEFAULT_REQUEST_S;
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (!h->h.max_response) h->h.max_response = SN_HTTP_DEFAULT_MAX_RESPONSE;
    if (h->h.root) {
        struct stat st;
        h->root = realpath(h->h.root, NULL);
        if (!h->root || stat(h->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
            if (log)
                sn_log_write(log, SN_LOG_ERROR, "http", "--http-root %s: %s", h->h.root,
                             h->root ? "not a folder" : strerror(errno));
            freeaddrinfo(ai);
            free_server(h);
            *err = SN_ENOENT;
            return NULL;
        }
    }

    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
        h, /* first, so that libmicrohttpd never prints on its own */
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, h->h.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->h.max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        h->h.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SN_HTTP_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        h, MHD_OPTION_UNESCAPE_CALLBACK, unescape, h, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        if (log) sn_log_write(log, SN_LOG_ERROR, "http", "cannot listen on %s", hostport);
        free_server(h);
        *err = SN_EIO;
        return NULL;
    }
    h->reaping = pthread_create(&h->reaper, NULL, reap, h) == 0;
    if (!h->reaping && log) /* the idle timeout and the limits remain */
        sn_log_write(log, SN_LOG_ERROR, "http", "cannot start the slow-client reaper");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    if (log) sn_log_write(log, SN_LOG_INFO, "http", "serving on %s (port %u)", hostport, h->port);
    if (log && h->root)
        sn_log_write(log, SN_LOG_INFO, "http", "serving the files of %s at %s", h->root,
                     FILES_PREFIX);
    *err = SN_OK;
    return h;
}

void sn_http_destroy(sn_http **hp)
{
    if (!hp || !*hp) return;
    sn_http *h = *hp;
    if (h->reaping) {
        pthread_mutex_lock(&h->lock);
        h->stop = 1;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->reaper, NULL);
    }
    MHD_stop_daemon(h->daemon); /* closes the connections: on_connection frees their records */
    free_server(h);
    *hp = NULL;
}

unsigned sn_http_port(const sn_http *h)
{
    assert(h && "sn_http_port: NULL server");
    return h->port;
}
