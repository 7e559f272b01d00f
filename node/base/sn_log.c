/* sn_log: one record is one fwrite, so glibc's stream lock keeps lines whole. */
#include "sn_log.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sn_log {
    FILE *out;
    sn_log_level level;
    sn_log_format format;
    void (*tap)(void *ud, const char *who, const char *text);
    void *tap_ud;
};

void sn_log_tap(sn_log *log, void (*fn)(void *ud, const char *who, const char *text), void *ud)
{
    log->tap = fn;
    log->tap_ud = ud;
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

sn_log *sn_log_new(FILE *out, sn_log_level level)
{
    sn_log *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    log->out = out;
    log->level = level;
    return log;
}

void sn_log_destroy(sn_log **lp)
{
    if (!lp || !*lp)
        return;
    free(*lp);
    *lp = NULL;
}

int sn_log_level_parse(const char *name, sn_log_level *level)
{
    for (int i = 0; i <= SN_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (sn_log_level)i;
            return SN_OK;
        }
    }
    return SN_EINVAL;
}

const char *sn_log_level_name(sn_log_level level)
{
    return level_names[level];
}

int sn_log_enabled(const sn_log *log, sn_log_level level)
{
    return log && level <= log->level;
}

int sn_log_format_parse(const char *name, sn_log_format *format)
{
    if (strcmp(name, "text") == 0)
        *format = SN_LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *format = SN_LOG_JSON;
    else
        return SN_EINVAL;
    return SN_OK;
}

void sn_log_set_format(sn_log *log, sn_log_format format)
{
    log->format = format;
}

/* A record being built: on the stack while it fits, then on the heap. On out of memory
 * it keeps what fits (a cut record beats a lost one). */
typedef struct line {
    char *p;
    size_t len, cap;
    int heap, cut;
    char stack[1024];
} line;

static void put(line *l, const char *s, size_t n)
{
    if (l->cut)
        return;
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap * 2;
        while (cap < l->len + n + 1)
            cap *= 2;
        char *q = l->heap ? realloc(l->p, cap) : malloc(cap);
        if (!q) {
            n = l->cap - 1 - l->len;
            l->cut = 1;
        } else {
            if (!l->heap)
                memcpy(q, l->p, l->len);
            l->p = q;
            l->cap = cap;
            l->heap = 1;
        }
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned min;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80, c &= 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800, c &= 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

/* A JSON string: quotes, escapes, and U+FFFD for each byte that is not UTF-8, so a
 * collector never meets an invalid line. */
static void put_json_string(line *l, const char *s, size_t n)
{
    put(l, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(l, esc, 2);
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (named)
                put(l, named, 2);
            else
                put(l, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c));
            i++;
        } else {
            size_t k = utf8_len((const unsigned char *)s + i, n - i);
            if (k == 0) {
                put(l, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                put(l, s + i, k);
                i += k;
            }
        }
    }
    put(l, "\"", 1);
}

static void put_json_field(line *l, const char *key, const char *value)
{
    put(l, ",\"", 2);
    puts_(l, key);
    put(l, "\":", 2);
    put_json_string(l, value, strlen(value));
}

void sn_log_put(sn_log *log, sn_log_level level, const char *who, const sn_log_where *where,
                const char *text, size_t len)
{
    if (!sn_log_enabled(log, level))
        return;
    double wall = sn_clock_wall();
    time_t sec = (time_t)wall;
    long ms = (long)((wall - (double)sec) * 1000.0);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char when[48];
    size_t wlen = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wlen, sizeof when - wlen, ".%03ldZ", ms);
    who = who ? who : "node";

    line l = {.cap = sizeof l.stack};
    l.p = l.stack;
    if (log->format == SN_LOG_JSON) {
        put(&l, "{\"time\":\"", 9);
        puts_(&l, when);
        put(&l, "\",\"level\":\"", 11);
        puts_(&l, level_names[level]);
        put(&l, "\"", 1);
        put_json_field(&l, "who", who);
        if (where && where->actor)
            put_json_field(&l, "actor", where->actor);
        if (where && where->file)
            put_json_field(&l, "file", where->file);
        if (where && where->line > 0) {
            char num[32];
            put(&l, num, (size_t)snprintf(num, sizeof num, ",\"line\":%d", where->line));
        }
        if (where && where->func)
            put_json_field(&l, "func", where->func);
        put(&l, ",\"msg\":", 7);
        put_json_string(&l, text, len);
        put(&l, "}", 1);
    } else {
        char head[128];
        put(&l, head, (size_t)snprintf(head, sizeof head, "%s [%s] [", when, level_tags[level]));
        puts_(&l, who);
        put(&l, "] ", 2);
        put(&l, text, len);
    }
    l.cut = 0; /* the newline always fits: put keeps one byte spare */
    l.p[l.len++] = '\n';
    fwrite(l.p, 1, l.len, log->out);
    fflush(log->out);
    if (log->tap && level == SN_LOG_ERROR) {
        /* the tap gets the message itself, whatever the format */
        char *msg = malloc(len + 1);
        if (msg) {
            memcpy(msg, text, len);
            msg[len] = '\0';
            log->tap(log->tap_ud, who, msg);
            free(msg);
        }
    }
    if (l.heap)
        free(l.p);
}

void sn_log_write(sn_log *log, sn_log_level level, const char *who, const char *fmt, ...)
{
    if (!sn_log_enabled(log, level))
        return;
    char stack[1024];
    char *buf = stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof stack) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            buf = big;
        } else {
            n = (int)sizeof stack - 1; /* keep what fits rather than lose the record */
        }
    }
    sn_log_put(log, level, who, NULL, buf, (size_t)n);
    if (buf != stack)
        free(buf);
}

void sn_log_rate_flush(sn_log *log, sn_log_rate *r, sn_log_level level, const char *who)
{
    if (r->suppressed)
        sn_log_write(log, level, who, "%llu more %s not logged", r->suppressed,
                     r->what ? r->what : "records");
    r->suppressed = 0;
}

void sn_log_vrated(sn_log *log, sn_log_rate *r, sn_log_level level, const char *who,
                   const char *fmt, va_list ap)
{
    if (!sn_log_enabled(log, level)) /* nothing to write: no line of the quota used */
        return;
    long long now = (long long)time(NULL);
    if (now != r->window) {
        sn_log_rate_flush(log, r, level, who);
        r->window = now;
        r->lines = 0;
    }
    if (r->lines >= (unsigned)(r->per_second > 0 ? r->per_second : 1)) {
        r->suppressed++;
        return;
    }
    r->lines++;
    char text[1024];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n < 0)
        return;
    sn_log_put(log, level, who, NULL, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void sn_log_rated(sn_log *log, sn_log_rate *r, sn_log_level level, const char *who,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sn_log_vrated(log, r, level, who, fmt, ap);
    va_end(ap);
}
