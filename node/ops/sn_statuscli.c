/* sn_statuscli: one HTTP/1.0 request over a TCP socket, bounded in time and size; the body is
 * parsed with cJSON and laid out in tables whose columns fit their widest cell. */
#include "sn_statuscli.h"
#include "sn_clock.h"

#include "sn_error.h"
#include "sn_http.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COLS       16
#define MAX_ROWS       4096 /* per table; more rows are summarised in one line */
#define MAX_STAGE_COLS 12

/* ---- fetching ---- */

static int64_t now_ms(void)
{
    return (int64_t)(sn_clock_mono() * 1000.0);
}

static int remaining(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left > 0 ? (int)left : 0;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, remaining(deadline));
        if (n >= 0) return n > 0 ? 1 : 0;
        if (errno != EINTR) return -1;
    }
}

/* Connects to one address: a socket, or -1 with errno set (ETIMEDOUT past the deadline). */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) goto fail;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS) goto fail;
    int w = wait_fd(fd, POLLOUT, deadline);
    if (w <= 0) {
        if (w == 0) errno = ETIMEDOUT;
        goto fail;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) goto fail;
    if (soerr != 0) {
        errno = soerr;
        goto fail;
    }
    return fd;
fail : {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

/* The raw response (caller owns *resp) or 1 after printing the one-line error. */
static int fetch(const char *hostport, char **resp, size_t *resp_len, FILE *err)
{
    char host[256];
    unsigned port;
    if (sn_http_split_hostport(hostport, host, sizeof host, &port) != SN_OK || port == 0) {
        fprintf(err, "status: bad address %s (expected HOST:PORT)\n", hostport);
        return 1;
    }
    int64_t deadline = now_ms() + SN_STATUSCLI_TIMEOUT_MS;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ais = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &ais);
    if (gai != 0) {
        fprintf(err, "status: cannot resolve %s: %s\n", host, gai_strerror(gai));
        return 1;
    }
    int fd = -1, cerr = ECONNREFUSED;
    for (struct addrinfo *ai = ais; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_one(ai, deadline);
        if (fd < 0) cerr = errno;
    }
    freeaddrinfo(ais);
    if (fd < 0) {
        fprintf(err, "status: cannot connect to %s: %s\n", hostport, strerror(cerr));
        return 1;
    }

    char req[512];
    int rl = snprintf(req, sizeof req,
                      "GET /status.json HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\n"
                      "User-Agent: stage-node-status\r\nConnection: close\r\n\r\n",
                      hostport);
    size_t sent = 0;
    while (sent < (size_t)rl) {
        int w = wait_fd(fd, POLLOUT, deadline);
        ssize_t n = w > 0 ? send(fd, req + sent, (size_t)rl - sent, MSG_NOSIGNAL) : -1;
        if (n < 0 && w > 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) {
            if (w == 0)
                fprintf(err, "status: timed out after %d s sending to %s\n",
                        SN_STATUSCLI_TIMEOUT_MS / 1000, hostport);
            else
                fprintf(err, "status: cannot send to %s: %s\n", hostport, strerror(errno));
            close(fd);
            return 1;
        }
        sent += (size_t)n;
    }

    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            if (cap >= SN_STATUSCLI_MAX_RESPONSE) {
                fprintf(err, "status: response from %s is larger than %u bytes\n", hostport,
                        SN_STATUSCLI_MAX_RESPONSE);
                goto fail;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        int w = wait_fd(fd, POLLIN, deadline);
        if (w == 0) {
            fprintf(err, "status: timed out after %d s waiting for %s\n",
                    SN_STATUSCLI_TIMEOUT_MS / 1000, hostport);
            goto fail;
        }
        ssize_t n = w > 0 ? recv(fd, buf + len, cap - len - 1, 0) : -1;
        if (n < 0 && w > 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) {
            fprintf(err, "status: cannot read from %s: %s\n", hostport, strerror(errno));
            goto fail;
        }
        if (n == 0) {
            close(fd);
            buf[len] = '\0';
            *resp = buf;
            *resp_len = len;
            return 0;
        }
        len += (size_t)n;
    }
    fprintf(err, "status: out of memory\n");
fail:
    free(buf);
    close(fd);
    return 1;
}

/* ---- tables ---- */

typedef struct table {
    size_t ncols, nrows, dropped;
    int right[MAX_COLS]; /* right-aligned (numeric) columns */
    char **cells;        /* nrows x ncols, caller-freed by table_fini */
} table;

static void table_init(table *t, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols < MAX_COLS ? ncols : MAX_COLS;
}

static void table_row(table *t, char *const *cells)
{
    if (t->nrows >= MAX_ROWS) {
        t->dropped++;
        return;
    }
    char **nc = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *nc);
    if (!nc) {
        t->dropped++;
        return;
    }
    t->cells = nc;
    for (size_t c = 0; c < t->ncols; c++)
        nc[t->nrows * t->ncols + c] = strdup(cells[c] ? cells[c] : "");
    t->nrows++;
}

static void table_print(const table *t, FILE *out)
{
    size_t width[MAX_COLS] = {0}, linecap = 1;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t w = s ? strlen(s) : 0;
            if (w > width[c]) width[c] = w;
        }
    for (size_t c = 0; c < t->ncols; c++)
        linecap += width[c] + 2;
    char *line = malloc(linecap);
    for (size_t r = 0; line && r < t->nrows; r++) {
        size_t n = 0;
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            s = s ? s : "";
            size_t sl = strlen(s), pad = width[c] - sl;
            if (t->right[c]) {
                memset(line + n, ' ', pad);
                n += pad;
            }
            memcpy(line + n, s, sl);
            n += sl;
            if (!t->right[c]) {
                memset(line + n, ' ', pad);
                n += pad;
            }
            if (c + 1 < t->ncols) {
                memcpy(line + n, "  ", 2);
                n += 2;
            }
        }
        while (n > 0 && line[n - 1] == ' ')
            n--; /* no trailing blanks */
        fprintf(out, "%.*s\n", (int)n, line);
    }
    free(line);
    if (t->dropped) fprintf(out, "(%zu more rows not shown)\n", t->dropped);
}

static void table_fini(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
}

/* ---- reading the document ---- */

static const char *jstr(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : dflt;
}

static int jnum(const cJSON *o, const char *k, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return 0;
    *out = v->valuedouble;
    return 1;
}

static void fmt_count(char *b, size_t n, const cJSON *o, const char *k)
{
    double v;
    if (jnum(o, k, &v))
        snprintf(b, n, "%.0f", v);
    else
        snprintf(b, n, "-");
}

static void fmt_duration(char *b, size_t n, double s)
{
    long t = s > 0 ? (long)s : 0;
    if (t >= 86400)
        snprintf(b, n, "%ldd%02ldh", t / 86400, t % 86400 / 3600);
    else if (t >= 3600)
        snprintf(b, n, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else if (t >= 60)
        snprintf(b, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(b, n, "%lds", t);
}

/* Local time of an epoch, with the date or without. */
static void fmt_clock(char *b, size_t n, double epoch, int with_date)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    if (epoch <= 0 || !localtime_r(&t, &tm) ||
        strftime(b, n, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm) == 0)
        snprintf(b, n, "-");
}

/* The member names in display order: members first, then any other key of "nodes". */
static size_t node_names(const cJSON *doc, const char **names, size_t cap)
{
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(doc, "members"))
    {
        const char *name = jstr(m, "name", NULL);
        if (name && n < cap) names[n++] = name;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc, "nodes"))
    {
        int seen = 0;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(names[i], v->string) == 0;
        if (!seen && n < cap) names[n++] = v->string;
    }
    return n;
}

static const cJSON *member_of(const cJSON *doc, const char *name)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(doc, "members"))
    {
        const char *n = jstr(m, "name", NULL);
        if (n && strcmp(n, name) == 0) return m;
    }
    return NULL;
}

static void print_nodes(const cJSON *doc, const char **names, size_t n, FILE *out)
{
    table t;
    table_init(&t, 14);
    char *head[] = {"NODE",     "STATE",    "INC",     "ENDPOINT", "HTTP",   "UPTIME",  "MSGS IN",
                    "MSGS OUT", "AVG IN/S", "DROPPED", "ERRORS",   "ACTORS", "MAILBOX", "NOTE"};
    table_row(&t, head);
    for (int c = 2; c <= 12; c++)
        t.right[c] = c != 3 && c != 4;
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes");
    for (size_t i = 0; i < n; i++) {
        const cJSON *m = member_of(doc, names[i]);
        const cJSON *view = cJSON_GetObjectItemCaseSensitive(nodes, names[i]);
        const cJSON *node = cJSON_GetObjectItemCaseSensitive(view, "node");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(view, "counters");
        char inc[24] = "-", up[24] = "-", in[24], outc[24], rate[24] = "-", drop[24], errs[24],
             act[24], mb[24], note[160] = "";
        double d, u;
        if (jnum(m, "incarnation", &d) || jnum(node, "incarnation", &d))
            snprintf(inc, sizeof inc, "%.0f", d);
        if (jnum(node, "uptime_s", &u)) fmt_duration(up, sizeof up, u);
        fmt_count(in, sizeof in, cnt, "messages_in");
        fmt_count(outc, sizeof outc, cnt, "messages_out");
        if (jnum(node, "uptime_s", &u) && u > 0 && jnum(cnt, "messages_in", &d))
            snprintf(rate, sizeof rate, "%.1f", d / u);
        fmt_count(drop, sizeof drop, cnt, "messages_dropped");
        fmt_count(errs, sizeof errs, cnt, "errors");
        fmt_count(act, sizeof act, cnt, "actors");
        fmt_count(mb, sizeof mb, cnt, "mailbox_depth");
        const char *verr = jstr(view, "error", NULL);
        double age;
        if (!view)
            snprintf(note, sizeof note, "no status gathered");
        else if (verr)
            snprintf(note, sizeof note, "status: %.140s", verr);
        else if (jnum(view, "age_s", &age) && age >= 10)
            snprintf(note, sizeof note, "status %.0f s old", age);
        char *row[] = {(char *)names[i],
                       (char *)jstr(m, "state", "?"),
                       inc,
                       (char *)(m ? jstr(m, "endpoint", "-") : jstr(node, "listen", "-")),
                       (char *)(m ? jstr(m, "http", "-") : jstr(node, "http", "-")),
                       up,
                       in,
                       outc,
                       rate,
                       drop,
                       errs,
                       act,
                       mb,
                       note};
        table_row(&t, row);
    }
    table_print(&t, out);
    table_fini(&t);
}

static void print_stages(const cJSON *doc, const char **names, size_t n, FILE *out)
{
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes");
    size_t ncols = n < MAX_STAGE_COLS ? n : MAX_STAGE_COLS;
    /* stage ids in first-seen order, across the nodes shown */
    const char **ids = NULL;
    size_t nids = 0;
    for (size_t i = 0; i < ncols; i++) {
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(nodes, names[i]), "stages"))
        {
            const char *id = jstr(s, "stage", NULL);
            int seen = !id;
            for (size_t k = 0; k < nids && !seen; k++)
                seen = strcmp(ids[k], id) == 0;
            if (seen || nids >= MAX_ROWS) continue;
            const char **ni = realloc(ids, (nids + 1) * sizeof *ni);
            if (!ni) break;
            ids = ni;
            ids[nids++] = id;
        }
    }
    if (nids == 0) {
        fprintf(out, "no stages\n");
        free(ids);
        return;
    }
    table t;
    table_init(&t, ncols + 1);
    char *row[MAX_STAGE_COLS + 1];
    row[0] = "STAGE";
    for (size_t c = 0; c < ncols; c++) {
        row[c + 1] = (char *)names[c];
        t.right[c + 1] = 1;
    }
    table_row(&t, row);
    char cells[MAX_STAGE_COLS][24];
    for (size_t k = 0; k < nids; k++) {
        row[0] = (char *)ids[k];
        for (size_t c = 0; c < ncols; c++) {
            snprintf(cells[c], sizeof cells[c], "-");
            const cJSON *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(
                                      cJSON_GetObjectItemCaseSensitive(nodes, names[c]), "stages"))
            {
                double a;
                const char *id = jstr(s, "stage", NULL);
                if (id && strcmp(id, ids[k]) == 0 && jnum(s, "actors", &a))
                    snprintf(cells[c], sizeof cells[c], "%.0f", a);
            }
            row[c + 1] = cells[c];
        }
        table_row(&t, row);
    }
    table_print(&t, out);
    if (n > ncols) fprintf(out, "(%zu more nodes not shown)\n", n - ncols);
    table_fini(&t);
    free(ids);
}

typedef struct error_ref {
    double time;
    const char *node, *actor, *text;
} error_ref;

static int newest_first(const void *a, const void *b)
{
    double ta = ((const error_ref *)a)->time, tb = ((const error_ref *)b)->time;
    return (ta < tb) - (ta > tb);
}

static void print_errors(const cJSON *doc, FILE *out)
{
    error_ref *all = NULL;
    size_t n = 0;
    const cJSON *view;
    cJSON_ArrayForEach(view, cJSON_GetObjectItemCaseSensitive(doc, "nodes"))
    {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(view, "errors"))
        {
            if (n >= MAX_ROWS) break;
            error_ref *na = realloc(all, (n + 1) * sizeof *na);
            if (!na) break;
            all = na;
            error_ref r = {0, view->string, jstr(e, "actor", "-"), jstr(e, "text", "")};
            jnum(e, "time", &r.time);
            all[n++] = r;
        }
    }
    if (n == 0) {
        fprintf(out, "no recent errors\n");
        free(all);
        return;
    }
    qsort(all, n, sizeof *all, newest_first);
    table t;
    table_init(&t, 4);
    char *head[] = {"TIME", "NODE", "ACTOR", "TEXT"};
    table_row(&t, head);
    for (size_t i = 0; i < n && i < 20; i++) {
        char when[32], text[200];
        fmt_clock(when, sizeof when, all[i].time, 0);
        /* one line per error: a traceback's first line */
        snprintf(text, sizeof text, "%s", all[i].text);
        text[strcspn(text, "\r\n")] = '\0';
        char *row[] = {when, (char *)all[i].node, (char *)all[i].actor, text};
        table_row(&t, row);
    }
    table_print(&t, out);
    table_fini(&t);
    free(all);
}

/* BROKER: one row per listener of each node that has any (closed: the sum of reasons). */
static void print_broker(const cJSON *doc, const char **names, size_t n, FILE *out)
{
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes");
    table t;
    table_init(&t, 9);
    char *head[9] = {"NODE", "LISTENER", "OPEN", "ACCEPTED", "CLOSED", "IN", "OUT", "QUEUED",
                     "PAUSED"};
    for (size_t c = 2; c < 9; c++)
        t.right[c] = 1;
    table_row(&t, head);
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(nodes, names[i]), "broker"))
        {
            double accepted = 0, open = 0, closed = 0;
            jnum(l, "accepted", &accepted);
            jnum(l, "open", &open);
            const cJSON *r;
            cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(l, "closed"))
                if (cJSON_IsNumber(r))
                    closed += r->valuedouble;
            if (!strcmp(jstr(l, "uri", ""), "join") && !open && !closed)
                continue; /* no broker.join socket ever */
            char cells[7][32];
            snprintf(cells[0], sizeof cells[0], "%.0f", open);
            snprintf(cells[1], sizeof cells[1], "%.0f", accepted);
            snprintf(cells[2], sizeof cells[2], "%.0f", closed);
            fmt_count(cells[3], sizeof cells[3], l, "frames_in");
            fmt_count(cells[4], sizeof cells[4], l, "frames_out");
            fmt_count(cells[5], sizeof cells[5], l, "queued_out");
            fmt_count(cells[6], sizeof cells[6], l, "paused");
            char *row[9] = {(char *)names[i], (char *)jstr(l, "uri", "-"), cells[0], cells[1],
                            cells[2], cells[3], cells[4], cells[5], cells[6]};
            table_row(&t, row);
            rows++;
        }
    }
    if (rows)
        table_print(&t, out);
    else
        fprintf(out, "no broker listeners\n");
    table_fini(&t);
}

static void print_doc(const cJSON *doc, FILE *out)
{
    char when[64];
    double g = 0;
    jnum(doc, "generated_at", &g);
    fmt_clock(when, sizeof when, g, 1);
    fprintf(out, "cluster %s, seen from %s at %s\n\n", jstr(doc, "cluster", "-"),
            jstr(doc, "node", "-"), when);
    const char *names[1024];
    size_t n = node_names(doc, names, sizeof names / sizeof names[0]);
    print_nodes(doc, names, n, out);
    fputc('\n', out);
    print_stages(doc, names, n, out);
    fprintf(out, "\nBROKER\n");
    print_broker(doc, names, n, out);
    fprintf(out, "\nLAST ERRORS\n");
    print_errors(doc, out);
}

int sn_status_cli(const char *hostport, FILE *out, FILE *err)
{
    char *resp = NULL;
    size_t len = 0;
    if (!hostport) {
        fprintf(err, "status: no address (expected --http HOST:PORT)\n");
        return 1;
    }
    if (fetch(hostport, &resp, &len, err) != 0) return 1;
    int code = 0;
    char *body = strstr(resp, "\r\n\r\n");
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1 || !body) {
        fprintf(err, "status: %s did not answer HTTP\n", hostport);
        free(resp);
        return 1;
    }
    if (code != 200) {
        fprintf(err, "status: %s answered HTTP %d for /status.json\n", hostport, code);
        free(resp);
        return 1;
    }
    body += 4;
    cJSON *doc = cJSON_ParseWithLength(body, len - (size_t)(body - resp));
    free(resp);
    if (!cJSON_IsObject(doc)) {
        fprintf(err, "status: %s sent invalid JSON\n", hostport);
        cJSON_Delete(doc);
        return 1;
    }
    print_doc(doc, out);
    cJSON_Delete(doc);
    return fflush(out) == 0 ? 0 : 1;
}
