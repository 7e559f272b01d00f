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

void sn_log_write(sn_log *log, sn_log_level level, const char *who, const char *fmt, ...)
{
    if (!sn_log_enabled(log, level))
        return;
    char stack[1024];
    char *buf = stack;
    size_t cap = sizeof stack;

    double wall = sn_clock_wall();
    time_t sec = (time_t)wall;
    long ms = (long)((wall - (double)sec) * 1000.0);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    for (int pass = 0; pass < 2; pass++) {
        int head = snprintf(buf, cap, "%s.%03ldZ [%s] [%s] ", when, ms,
                            level_tags[level], who ? who : "node");
        if (head < 0)
            return;
        va_list ap;
        va_start(ap, fmt);
        int body = (size_t)head < cap ? vsnprintf(buf + head, cap - (size_t)head, fmt, ap) : 0;
        va_end(ap);
        if (body < 0)
            return;
        size_t need = (size_t)head + (size_t)body + 2;
        if (need <= cap || pass == 1) {
            size_t len = need - 2 < cap ? need - 2 : cap - 1;
            buf[len] = '\n';
            fwrite(buf, 1, len + 1, log->out);
            fflush(log->out);
            if (log->tap && level == SN_LOG_ERROR) {
                buf[len] = '\0';
                log->tap(log->tap_ud, who ? who : "node", buf + head);
            }
            break;
        }
        char *big = malloc(need);
        if (!big) { /* keep what fits rather than lose the record */
            size_t len = cap - 2;
            buf[len] = '\n';
            fwrite(buf, 1, len + 1, log->out);
            break;
        }
        buf = big;
        cap = need;
    }
    if (buf != stack)
        free(buf);
}
