/* sn_log: timestamped, levelled log records on one stream (stderr for the node).
 * A record is formatted whole and written with one call, so threads never interleave mid-line. */
#ifndef SN_LOG_H
#define SN_LOG_H

#include <stdarg.h>
#include <stdio.h>

typedef enum sn_log_level {
    SN_LOG_ERROR = 0,
    SN_LOG_WARN,
    SN_LOG_INFO,
    SN_LOG_DEBUG
} sn_log_level;

typedef struct sn_log sn_log;

/* How records are written: text lines, or JSON lines (one object per line) for log
 * collectors (docs/node.md, --log-format). */
typedef enum sn_log_format {
    SN_LOG_TEXT = 0,
    SN_LOG_JSON
} sn_log_format;

/* Where a record comes from, for records written on a script's behalf (logger.*): the
 * JSON form carries each field that is set; the text form carries none of them. */
typedef struct sn_log_where {
    const char *file; /* NULL: none */
    int line;         /* <= 0: none */
    const char *func; /* NULL: none */
    const char *actor; /* the actor, when `who` names a logger of the script's choice */
} sn_log_where;

/* sn_log_new: a logger writing records at or above level to out (not owned). NULL on ENOMEM. */
sn_log *sn_log_new(FILE *out, sn_log_level level);
/* sn_log_destroy: frees *lp (NULL is fine) and nulls it. */
void sn_log_destroy(sn_log **lp);

/* sn_log_level_parse: "error"|"warn"|"info"|"debug" -> *level; SN_EINVAL otherwise. */
int sn_log_level_parse(const char *name, sn_log_level *level);
/* sn_log_level_name: the name of a level, as parsed. */
const char *sn_log_level_name(sn_log_level level);

/* sn_log_format_parse: "text"|"json" -> *format; SN_EINVAL otherwise. */
int sn_log_format_parse(const char *name, sn_log_format *format);
/* sn_log_set_format: from now on records are written in format. Set it before other
 * threads log. */
void sn_log_set_format(sn_log *log, sn_log_format format);

/* sn_log_enabled: whether a record at level would be written. Any thread. */
int sn_log_enabled(const sn_log *log, sn_log_level level);
/* sn_log_write: one record "TIME [LEVEL] [who] message". who may be NULL. Any thread.
 * A message with several lines (a traceback) stays one record. */
void sn_log_write(sn_log *log, sn_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A rate limit for one kind of record: at most per_second of them in a wall-clock second;
 * the rest are counted, and the next second's first record is preceded by "N more WHAT not
 * logged". Zero-initialise it; one thread at a time (the caller's). */
typedef struct sn_log_rate {
    int per_second;
    const char *what;        /* names the records in the summary, e.g. "refused frames" */
    long long window;        /* the second the lines below were counted in */
    unsigned lines;          /* written in that second */
    unsigned long long suppressed; /* not written since the last summary */
} sn_log_rate;
/* sn_log_rated: sn_log_write within r's limit. */
void sn_log_rated(sn_log *log, sn_log_rate *r, sn_log_level level, const char *who,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* sn_log_vrated: sn_log_rated with a va_list, for callers that take their own arguments. */
void sn_log_vrated(sn_log *log, sn_log_rate *r, sn_log_level level, const char *who,
                   const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
/* sn_log_rate_flush: writes r's summary now if records were held back (at shutdown). */
void sn_log_rate_flush(sn_log *log, sn_log_rate *r, sn_log_level level, const char *who);

/* sn_log_put: one record of len bytes of text (not a format; may hold any byte, invalid
 * UTF-8 becomes U+FFFD in the JSON form), with where (may be NULL). Any thread. */
void sn_log_put(sn_log *log, sn_log_level level, const char *who, const sn_log_where *where,
                const char *text, size_t len);

/* sn_log_tap: calls fn(ud, who, text) for every record at level error (the text without the
 * time and level), after writing it; fn runs on the writing thread and must be quick and
 * thread-safe. fn NULL removes it. Set it before other threads log. */
void sn_log_tap(sn_log *log, void (*fn)(void *ud, const char *who, const char *text), void *ud);

#endif
