/* sn_metrics: families in a list under the registry's mutex; a family's series in an sn_map
 * (keyed by their label values) under its rwlock, each series allocated once so handles stay valid; values are atomics. */
#include "sn_metrics.h"

#include "sn_clock.h"
#include "sn_error.h"
#include "sn_map.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double sn_metrics_handler_buckets[10] = {0.0001, 0.0005, 0.001, 0.005, 0.01,
                                               0.05,   0.1,    0.5,   1,     5};

struct sn_series {
    sn_series *next;  /* in creation order, for a stable rendering */
    sn_metric *family;
    char values[SN_METRICS_MAX_LABELS][SN_METRICS_MAX_LABEL_VALUE + 1];
    _Atomic uint64_t value;    /* counter: the count; gauge: the bits of a double */
    _Atomic uint64_t sum;      /* histogram: the bits of a double */
    _Atomic uint64_t counts[]; /* histogram: per bucket (not cumulative), then +Inf */
};

struct sn_metric {
    sn_metric *next;
    sn_metrics *reg;
    sn_metric_type type;
    char *name;
    char *help;
    char *labels[SN_METRICS_MAX_LABELS];
    int nlabels;
    double buckets[SN_METRICS_MAX_BUCKETS];
    size_t nbuckets;
    pthread_rwlock_t lock; /* guards the series list, the table and the collector */
    sn_series *first, *last;
    size_t nseries;
    sn_map *byvalues;         /* key_of(values) -> series */
    sn_series *overflow;      /* labelled families: the "_other" series */
    atomic_int overflow_used; /* rendered only once handed out */
    sn_metrics_collect_fn collect;
    void *collect_ud;
};

struct sn_metrics {
    pthread_mutex_t lock; /* guards the family list */
    sn_metric *first, *last;
    size_t max_series;
    sn_metric *dropped;      /* stage_metrics_dropped_series_total{metric} */
    sn_series *uptime;       /* set at each render when the standard set is registered */
    double started;          /* sn_clock_mono at sn_metrics_std_register */
};

/* ---- doubles in atomics ---- */

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double double_of(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void atomic_add_double(_Atomic uint64_t *a, double delta)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, bits_of(double_of(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* ---- names ---- */

static int valid_name(const char *s, int colon)
{
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

/* The label values of a lookup: NULL pointers read as "". */
typedef const char *label_values[SN_METRICS_MAX_LABELS];

/* A series' key in its family's map: each value (cut as copy_value cuts it) as one byte
 * holding its length + 1 (never NUL), then its bytes, so that no two lists of values share a
 * key. Built with memcpy: lookups run on every message. */
enum { KEY_MAX = SN_METRICS_MAX_LABELS * (SN_METRICS_MAX_LABEL_VALUE + 1) + 1 };
_Static_assert(SN_METRICS_MAX_LABEL_VALUE + 1 <= 255, "a value's length fits one byte");

static void key_of(const label_values vs, char key[KEY_MAX])
{
    size_t at = 0;
    for (int i = 0; i < SN_METRICS_MAX_LABELS; i++) {
        const char *v = vs[i] ? vs[i] : "";
        size_t n = strnlen(v, SN_METRICS_MAX_LABEL_VALUE);
        key[at++] = (char)(unsigned char)(n + 1);
        memcpy(key + at, v, n);
        at += n;
    }
    key[at] = '\0';
}

static void copy_value(char *dst, const char *src)
{
    size_t n = src ? strnlen(src, SN_METRICS_MAX_LABEL_VALUE) : 0;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- series ---- */

static sn_series *series_alloc(sn_metric *m, const label_values vs)
{
    size_t ncounts = m->type == SN_METRIC_HISTOGRAM ? m->nbuckets + 1 : 0;
    sn_series *s = calloc(1, sizeof *s + ncounts * sizeof s->counts[0]);
    if (!s) return NULL;
    s->family = m;
    for (int i = 0; i < m->nlabels; i++)
        copy_value(s->values[i], vs[i]);
    atomic_init(&s->value, m->type == SN_METRIC_GAUGE ? bits_of(0.0) : 0);
    atomic_init(&s->sum, bits_of(0.0));
    for (size_t i = 0; i < ncounts; i++)
        atomic_init(&s->counts[i], 0);
    return s;
}

/* Links s (keyed key) into m: SN_OK, or SN_ENOMEM (s not linked); m's write lock is held. */
static int series_link(sn_metric *m, sn_series *s, const char *key)
{
    if (sn_map_sput(m->byvalues, key, s) != SN_OK) return SN_ENOMEM;
    if (m->last)
        m->last->next = s;
    else
        m->first = s;
    m->last = s;
    m->nseries++;
    return SN_OK;
}

static void count_dropped(sn_metric *m, uint64_t n)
{
    sn_metrics *reg = m->reg;
    if (n == 0 || !reg->dropped || m == reg->dropped) return;
    sn_series_add(sn_metric_child(reg->dropped, m->name, NULL), n);
}

sn_series *sn_metric_child(sn_metric *m, const char *v1, const char *v2)
{
    const char *vs[] = {v1, v2};
    return sn_metric_childv(m, vs, 2);
}

sn_series *sn_metric_childv(sn_metric *m, const char *const *values, size_t n)
{
    assert(m && (values || n == 0) && "sn_metric_childv: NULL argument");
    label_values vs = {NULL};
    for (size_t i = 0; i < n && i < (size_t)m->nlabels; i++)
        vs[i] = values[i];
    char key[KEY_MAX];
    key_of(vs, key);

    pthread_rwlock_rdlock(&m->lock);
    sn_series *s = sn_map_sget(m->byvalues, key);
    pthread_rwlock_unlock(&m->lock);
    if (s) return s;

    pthread_rwlock_wrlock(&m->lock);
    s = sn_map_sget(m->byvalues, key);
    if (!s && m->nseries < m->reg->max_series) {
        s = series_alloc(m, vs);
        if (s && series_link(m, s, key) != SN_OK) {
            free(s);
            s = NULL;
        }
    }
    pthread_rwlock_unlock(&m->lock);
    if (s) return s;
    atomic_store(&m->overflow_used, 1);
    count_dropped(m, 1);
    return m->overflow;
}

void sn_series_inc(sn_series *s)
{
    sn_series_add(s, 1);
}

void sn_series_add(sn_series *s, uint64_t n)
{
    assert(s && s->family->type == SN_METRIC_COUNTER && "sn_series_add: not a counter");
    atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void sn_series_set_counter(sn_series *s, uint64_t total)
{
    assert(s && s->family->type == SN_METRIC_COUNTER && "sn_series_set_counter: not a counter");
    atomic_store_explicit(&s->value, total, memory_order_relaxed);
}

void sn_series_set(sn_series *s, double v)
{
    assert(s && s->family->type == SN_METRIC_GAUGE && "sn_series_set: not a gauge");
    atomic_store_explicit(&s->value, bits_of(v), memory_order_relaxed);
}

void sn_series_gauge_add(sn_series *s, double delta)
{
    assert(s && s->family->type == SN_METRIC_GAUGE && "sn_series_gauge_add: not a gauge");
    atomic_add_double(&s->value, delta);
}

void sn_series_observe(sn_series *s, double v)
{
    assert(s && s->family->type == SN_METRIC_HISTOGRAM && "sn_series_observe: not a histogram");
    const sn_metric *m = s->family;
    size_t i = 0;
    while (i < m->nbuckets && !(v <= m->buckets[i]))
        i++;
    atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
    atomic_add_double(&s->sum, v);
}

double sn_series_value(sn_series *s)
{
    assert(s && "sn_series_value: NULL series");
    uint64_t b = atomic_load_explicit(&s->value, memory_order_relaxed);
    switch (s->family->type) {
    case SN_METRIC_COUNTER:
        return (double)b;
    case SN_METRIC_GAUGE:
        return double_of(b);
    case SN_METRIC_HISTOGRAM:
        break;
    }
    uint64_t n = 0;
    for (size_t i = 0; i <= s->family->nbuckets; i++)
        n += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
    return (double)n;
}

/* ---- families ---- */

static void metric_free(sn_metric *m)
{
    if (!m) return;
    for (sn_series *s = m->first, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    free(m->overflow);
    sn_map_destroy(&m->byvalues);
    free(m->name);
    free(m->help);
    for (int i = 0; i < SN_METRICS_MAX_LABELS; i++)
        free(m->labels[i]);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

static int check_desc(const sn_metric_desc *d)
{
    if (!d || !valid_name(d->name, 1) || d->type > SN_METRIC_HISTOGRAM) return SN_EINVAL;
    for (int i = 0; i < SN_METRICS_MAX_LABELS; i++) {
        if (!d->labels[i]) {
            for (int k = i + 1; k < SN_METRICS_MAX_LABELS; k++)
                if (d->labels[k]) return SN_EINVAL; /* no gaps */
            break;
        }
        if (!valid_name(d->labels[i], 0) || strncmp(d->labels[i], "__", 2) == 0) return SN_EINVAL;
        if (d->type == SN_METRIC_HISTOGRAM && strcmp(d->labels[i], "le") == 0) return SN_EINVAL;
        for (int k = 0; k < i; k++)
            if (strcmp(d->labels[k], d->labels[i]) == 0) return SN_EINVAL;
    }
    if (d->type != SN_METRIC_HISTOGRAM) return d->nbuckets == 0 ? SN_OK : SN_EINVAL;
    if (!d->buckets || d->nbuckets == 0 || d->nbuckets > SN_METRICS_MAX_BUCKETS) return SN_EINVAL;
    for (size_t i = 0; i < d->nbuckets; i++) {
        if (!isfinite(d->buckets[i]) || (i > 0 && !(d->buckets[i] > d->buckets[i - 1])))
            return SN_EINVAL;
    }
    return SN_OK;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static sn_metric *metric_alloc(sn_metrics *reg, const sn_metric_desc *d)
{
    sn_metric *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_rwlock_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->reg = reg;
    m->type = d->type;
    m->name = strdup(d->name);
    m->help = dup_or_empty(d->help);
    int bad = !m->name || !m->help;
    for (int i = 0; i < SN_METRICS_MAX_LABELS && d->labels[i]; i++) {
        m->labels[i] = strdup(d->labels[i]);
        bad |= !m->labels[i];
        m->nlabels = i + 1;
    }
    m->nbuckets = d->type == SN_METRIC_HISTOGRAM ? d->nbuckets : 0;
    if (m->nbuckets) memcpy(m->buckets, d->buckets, m->nbuckets * sizeof m->buckets[0]);
    m->byvalues = sn_map_new(SN_MAP_STR);
    bad |= !m->byvalues;
    if (!bad && m->nlabels > 0) {
        label_values other;
        for (int i = 0; i < SN_METRICS_MAX_LABELS; i++)
            other[i] = SN_METRICS_OVERFLOW_VALUE;
        m->overflow = series_alloc(m, other);
        bad |= !m->overflow;
    } else if (!bad) {
        /* An unlabelled family is one series, there from the start (it renders as 0). */
        label_values none = {NULL};
        char key[KEY_MAX];
        key_of(none, key);
        sn_series *s = series_alloc(m, none);
        if (s && series_link(m, s, key) != SN_OK) {
            free(s);
            s = NULL;
        }
        bad |= !s;
    }
    if (bad) {
        metric_free(m);
        return NULL;
    }
    return m;
}

int sn_metrics_add(sn_metrics *reg, const sn_metric_desc *d, sn_metric **out)
{
    assert(reg && out && "sn_metrics_add: NULL argument");
    *out = NULL;
    int rc = check_desc(d);
    if (rc != SN_OK) return rc;
    sn_metric *m = metric_alloc(reg, d);
    if (!m) return SN_ENOMEM;
    pthread_mutex_lock(&reg->lock);
    for (sn_metric *o = reg->first; o; o = o->next) {
        if (strcmp(o->name, m->name) == 0) {
            pthread_mutex_unlock(&reg->lock);
            metric_free(m);
            return SN_EINVAL;
        }
    }
    if (reg->last)
        reg->last->next = m;
    else
        reg->first = m;
    reg->last = m;
    pthread_mutex_unlock(&reg->lock);
    *out = m;
    return SN_OK;
}

void sn_metric_set_collector(sn_metric *m, sn_metrics_collect_fn fn, void *ud)
{
    assert(m && m->type == SN_METRIC_GAUGE && "sn_metric_set_collector: not a gauge");
    pthread_rwlock_wrlock(&m->lock);
    m->collect = fn;
    m->collect_ud = ud;
    pthread_rwlock_unlock(&m->lock);
}

sn_metrics *sn_metrics_new(size_t max_series)
{
    sn_metrics *reg = calloc(1, sizeof *reg);
    if (!reg) return NULL;
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        free(reg);
        return NULL;
    }
    reg->max_series = max_series ? max_series : SN_METRICS_DEFAULT_MAX_SERIES;
    sn_metric_desc d = {
        .type = SN_METRIC_COUNTER,
        .name = "stage_metrics_dropped_series_total",
        .help = "Lookups of a new series sent to the overflow series (label values \"_other\") "
                "because the family reached its series cap.",
        .labels = {"metric"},
    };
    if (sn_metrics_add(reg, &d, &reg->dropped) != SN_OK) {
        sn_metrics_destroy(&reg);
        return NULL;
    }
    return reg;
}

void sn_metrics_destroy(sn_metrics **regp)
{
    if (!regp || !*regp) return;
    sn_metrics *reg = *regp;
    for (sn_metric *m = reg->first, *n; m; m = n) {
        n = m->next;
        metric_free(m);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
    *regp = NULL;
}

/* ---- rendering ---- */

typedef struct textbuf {
    char *p;
    size_t len, cap, max;
    int err;
} textbuf;

static void tb_reserve(textbuf *b, size_t more)
{
    if (b->err) return;
    if (more > b->max || b->len + more > b->max) {
        b->err = SN_ELIMIT;
        return;
    }
    if (b->len + more + 1 <= b->cap) return;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + more + 1)
        ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) {
        b->err = SN_ENOMEM;
        return;
    }
    b->p = np;
    b->cap = ncap;
}

static void tb_put(textbuf *b, const char *s, size_t n)
{
    tb_reserve(b, n);
    if (b->err) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void tb_puts(textbuf *b, const char *s)
{
    tb_put(b, s, strlen(s));
}

/* Escapes for HELP (label 0): backslash and newline; for label values also the quote. */
static void tb_escaped(textbuf *b, const char *s, int quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            tb_put(b, "\\\\", 2);
        else if (*p == '\n')
            tb_put(b, "\\n", 2);
        else if (quote && *p == '"')
            tb_put(b, "\\\"", 2);
        else
            tb_put(b, p, 1);
    }
}

/* A sample value in the exposition format: integers plainly, others round-trip exact. */
static void format_number(char out[40], double v)
{
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, 40, "%.0f", v);
    } else {
        snprintf(out, 40, "%.15g", v);
        if (strtod(out, NULL) != v) snprintf(out, 40, "%.17g", v);
    }
}

/* name{l1="v1",l2="v2"[,le="x"]} value\n */
static void tb_sample(textbuf *b, const sn_metric *m, const char *suffix, const label_values vals,
                      const char *le, const char *value)
{
    tb_puts(b, m->name);
    tb_puts(b, suffix);
    if (m->nlabels > 0 || le) {
        tb_put(b, "{", 1);
        for (int i = 0; i < m->nlabels; i++) {
            if (i > 0) tb_put(b, ",", 1);
            tb_puts(b, m->labels[i]);
            tb_put(b, "=\"", 2);
            tb_escaped(b, vals[i] ? vals[i] : "", 1);
            tb_put(b, "\"", 1);
        }
        if (le) {
            if (m->nlabels > 0) tb_put(b, ",", 1);
            tb_puts(b, "le=\"");
            tb_puts(b, le);
            tb_put(b, "\"", 1);
        }
        tb_put(b, "}", 1);
    }
    tb_put(b, " ", 1);
    tb_puts(b, value);
    tb_put(b, "\n", 1);
}

static void render_series(textbuf *b, const sn_metric *m, sn_series *s)
{
    char num[40];
    label_values vs;
    for (int i = 0; i < SN_METRICS_MAX_LABELS; i++)
        vs[i] = s->values[i];
    if (m->type == SN_METRIC_COUNTER) {
        snprintf(num, sizeof num, "%llu",
                 (unsigned long long)atomic_load_explicit(&s->value, memory_order_relaxed));
        tb_sample(b, m, "", vs, NULL, num);
        return;
    }
    if (m->type == SN_METRIC_GAUGE) {
        format_number(num, double_of(atomic_load_explicit(&s->value, memory_order_relaxed)));
        tb_sample(b, m, "", vs, NULL, num);
        return;
    }
    /* Cumulative buckets, and a count equal to the +Inf bucket even while others observe. */
    uint64_t cum = 0;
    char le[40];
    for (size_t i = 0; i <= m->nbuckets; i++) {
        cum += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
        if (i < m->nbuckets)
            format_number(le, m->buckets[i]);
        else
            strcpy(le, "+Inf");
        snprintf(num, sizeof num, "%llu", (unsigned long long)cum);
        tb_sample(b, m, "_bucket", vs, le, num);
    }
    format_number(num, double_of(atomic_load_explicit(&s->sum, memory_order_relaxed)));
    tb_sample(b, m, "_sum", vs, NULL, num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)cum);
    tb_sample(b, m, "_count", vs, NULL, num);
}

struct sn_metrics_emitter {
    textbuf *b;
    sn_metric *m;
    size_t n;
    uint64_t dropped;
};

void sn_metrics_emit(sn_metrics_emitter *e, const char *v1, const char *v2, double v)
{
    assert(e && "sn_metrics_emit: outside a collector");
    if (e->m->nseries + e->n >= e->m->reg->max_series) {
        e->dropped++;
        return;
    }
    e->n++;
    char cut[2][SN_METRICS_MAX_LABEL_VALUE + 1], num[40];
    copy_value(cut[0], v1);
    copy_value(cut[1], v2);
    label_values vs = {cut[0], cut[1]};
    format_number(num, v);
    tb_sample(e->b, e->m, "", vs, NULL, num);
}

static const char *type_name(sn_metric_type t)
{
    switch (t) {
    case SN_METRIC_COUNTER:
        return "counter";
    case SN_METRIC_GAUGE:
        return "gauge";
    case SN_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

static void render_family(textbuf *b, sn_metric *m)
{
    tb_puts(b, "# HELP ");
    tb_puts(b, m->name);
    tb_put(b, " ", 1);
    tb_escaped(b, m->help, 0);
    tb_puts(b, "\n# TYPE ");
    tb_puts(b, m->name);
    tb_put(b, " ", 1);
    tb_puts(b, type_name(m->type));
    tb_put(b, "\n", 1);

    sn_metrics_emitter e = {.b = b, .m = m};
    pthread_rwlock_rdlock(&m->lock);
    for (sn_series *s = m->first; s; s = s->next)
        render_series(b, m, s);
    if (m->overflow && atomic_load(&m->overflow_used)) render_series(b, m, m->overflow);
    if (m->collect) m->collect(m->collect_ud, &e);
    pthread_rwlock_unlock(&m->lock);
    count_dropped(m, e.dropped);
}

int sn_metrics_render(sn_metrics *reg, size_t max_bytes, char **out, size_t *len)
{
    assert(reg && out && len && "sn_metrics_render: NULL argument");
    *out = NULL;
    *len = 0;
    textbuf b = {.max = max_bytes};
    pthread_mutex_lock(&reg->lock);
    if (reg->uptime) {
        sn_series_set(reg->uptime, sn_clock_mono() - reg->started);
    }
    for (sn_metric *m = reg->first; m && !b.err; m = m->next)
        render_family(&b, m);
    pthread_mutex_unlock(&reg->lock);
    if (!b.err) tb_reserve(&b, 0); /* an empty registry still yields a string */
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return SN_OK;
}

/* ---- the standard set ---- */

static int add(sn_metrics *reg, sn_metric **out, sn_metric_type type, const char *name,
               const char *help, const char *l1, const char *l2, const char *l3)
{
    sn_metric_desc d = {.type = type, .name = name, .help = help, .labels = {l1, l2, l3}};
    if (type == SN_METRIC_HISTOGRAM) {
        d.buckets = sn_metrics_handler_buckets;
        d.nbuckets = sizeof sn_metrics_handler_buckets / sizeof sn_metrics_handler_buckets[0];
    }
    return sn_metrics_add(reg, &d, out);
}

int sn_metrics_std_register(sn_metrics *reg, sn_metrics_std *std, const char *node,
                            const char *cluster, const char *version)
{
    assert(reg && std && "sn_metrics_std_register: NULL argument");
    memset(std, 0, sizeof *std);
    const sn_metric_type C = SN_METRIC_COUNTER, G = SN_METRIC_GAUGE, H = SN_METRIC_HISTOGRAM;
    sn_metric *jobs, *workers, *jobs_running, *wire_bytes, *wire_msgs, *cache, *info, *uptime;
    int rc;
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((rc = (call)) != SN_OK) return rc;                                                     \
    } while (0)
    TRY(add(reg, &std->messages_in, C, "stage_messages_in_total",
            "Messages delivered to actors' mailboxes, per stage.", "stage", NULL, NULL));
    TRY(add(reg, &std->messages_out, C, "stage_messages_out_total",
            "Messages sent by actors, per stage.", "stage", NULL, NULL));
    TRY(add(reg, &std->messages_dropped, C, "stage_messages_dropped_total",
            "Messages dropped, per stage and reason (mailbox_full|no_route|node_down|"
            "failed_actor).",
            "stage", "reason", NULL));
    TRY(add(reg, &std->mailbox_depth, G, "stage_mailbox_depth",
            "Messages waiting in the mailboxes of a stage's actors.", "stage", NULL, NULL));
    TRY(add(reg, &std->handler_seconds, H, "stage_handler_seconds",
            "Time an actor's handler ran for one message, in seconds.", "stage", NULL, NULL));
    TRY(add(reg, &std->errors, C, "stage_errors_total",
            "Lua errors, per stage and kind (chunk|handler|timer|job|thread).", "stage", "kind",
            NULL));
    TRY(add(reg, &std->kills, C, "stage_kills_total",
            "Actors killed by the node, per stage and reason (budget|memory).", "stage", "reason",
            NULL));
    TRY(add(reg, &std->actors, G, "stage_actors", "Live actors, per stage.", "stage", NULL, NULL));
    TRY(add(reg, &workers, G, "stage_workers", "Worker threads running actors.", NULL, NULL, NULL));
    TRY(add(reg, &jobs, C, "stage_jobs_total", "Jobs started.", NULL, NULL, NULL));
    TRY(add(reg, &jobs_running, G, "stage_jobs_running", "Jobs running now.", NULL, NULL, NULL));
    TRY(add(reg, &std->peers, G, "stage_peers",
            "Cluster members this node knows, per state (alive|suspect|down|left).", "state", NULL,
            NULL));
    TRY(add(reg, &wire_bytes, C, "stage_wire_bytes_total",
            "Bytes sent to (out) and received from (in) other nodes.", "direction", NULL, NULL));
    TRY(add(reg, &wire_msgs, C, "stage_wire_messages_total",
            "Messages sent to (out) and received from (in) other nodes.", "direction", NULL, NULL));
    TRY(add(reg, &std->lua_memory, G, "stage_lua_memory_bytes",
            "Memory held by the Lua states of a stage's actors, in bytes.", "stage", NULL, NULL));
    TRY(add(reg, &cache, C, "stage_function_cache_total",
            "Lookups in the cache of functions received from peers, per result (hit|miss).",
            "result", NULL, NULL));
    TRY(add(reg, &info, G, "stage_node_info",
            "Always 1; the labels name this node, its cluster and the stage-node version.", "node",
            "cluster", "version"));
    TRY(add(reg, &uptime, G, "stage_uptime_seconds", "Seconds since the node started.", NULL, NULL,
            NULL));
#undef TRY
    std->workers = sn_metric_child(workers, NULL, NULL);
    std->jobs = sn_metric_child(jobs, NULL, NULL);
    std->jobs_running = sn_metric_child(jobs_running, NULL, NULL);
    std->wire_bytes_in = sn_metric_child(wire_bytes, "in", NULL);
    std->wire_bytes_out = sn_metric_child(wire_bytes, "out", NULL);
    std->wire_messages_in = sn_metric_child(wire_msgs, "in", NULL);
    std->wire_messages_out = sn_metric_child(wire_msgs, "out", NULL);
    std->cache_hits = sn_metric_child(cache, "hit", NULL);
    std->cache_misses = sn_metric_child(cache, "miss", NULL);
    const char *states[] = {"alive", "suspect", "down", "left"};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        (void)sn_metric_child(std->peers, states[i], NULL);
    const char *info_values[] = {node, cluster, version};
    std->node_info = sn_metric_childv(info, info_values, 3);
    sn_series_set(std->node_info, 1);
    std->uptime = sn_metric_child(uptime, NULL, NULL);
    pthread_mutex_lock(&reg->lock);
    reg->started = sn_clock_mono();
    reg->uptime = std->uptime;
    pthread_mutex_unlock(&reg->lock);
    return SN_OK;
}
