/* sn_limits: specs are kept as given and applied in order, so a later --stage for the same
 * stage wins, like any repeated flag. */
#include "sn_limits.h"
#include "sn_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_limits_table {
    int n;
    char **spec;
};

static int parse_size(const char *v, size_t *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || !isfinite(x) || x < 0) /* strtod takes "nan" and "inf" */
        return SN_EINVAL;
    double mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024.0, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024.0 * 1024 * 1024, end++;
    if (*end || x * mul >= 0x1p63) /* beyond that, the cast to size_t is undefined */
        return SN_EINVAL;
    *out = (size_t)(x * mul);
    return SN_OK;
}

static int parse_seconds(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < 0)
        return SN_EINVAL;
    *out = x;
    return SN_OK;
}

/* Applies key=value to l; SN_EINVAL with a message for an unknown key or a bad value. */
static int apply(sn_limits *l, const char *key, size_t klen, const char *val, char *err,
                 size_t errlen)
{
#define IS(k) (klen == strlen(k) && strncmp(key, k, klen) == 0)
    int rc = SN_OK;
    size_t size;
    if (IS("budget")) {
        rc = parse_seconds(val, &l->budget);
    } else if (IS("memory")) {
        rc = parse_size(val, &l->memory_cap);
    } else if (IS("memory_warn")) {
        rc = parse_size(val, &l->memory_warn);
    } else if (IS("mailbox")) {
        rc = parse_size(val, &size);
        if (rc == SN_OK && size == 0)
            rc = SN_EINVAL;
        l->mailbox = size;
    } else if (IS("mailbox_bytes")) {
        rc = parse_size(val, &size);
        if (rc == SN_OK && size == 0)
            rc = SN_EINVAL;
        l->mailbox_bytes = size;
    } else if (IS("restart")) {
        if (strcmp(val, "never") == 0)
            l->restart = SN_RESTART_NEVER;
        else if (strcmp(val, "always") == 0)
            l->restart = SN_RESTART_ALWAYS;
        else
            rc = SN_EINVAL;
    } else if (IS("intensity")) {
        rc = parse_size(val, &size);
        if (rc == SN_OK && (size < 1 || size > 1000000))
            rc = SN_EINVAL;
        l->intensity = (int)size;
    } else if (IS("period")) {
        rc = parse_seconds(val, &l->period);
    } else {
        snprintf(err, errlen, "unknown limit '%.*s' (budget, memory, memory_warn, mailbox, "
                 "mailbox_bytes, restart, intensity, period)", (int)klen, key);
        return SN_EINVAL;
    }
    if (rc != SN_OK)
        snprintf(err, errlen, "bad value '%s' for '%.*s' (%s)", val, (int)klen, key,
                 IS("restart") ? "never or always"
                 : IS("budget") || IS("period") ? "a finite number of seconds, 0 or more"
                 : IS("intensity") ? "an integer from 1 to 1000000"
                 : IS("mailbox") || IS("mailbox_bytes") ? "a finite number above 0"
                 : "a finite number of bytes, 0 or more, with K, M or G");
    return rc;
#undef IS
}

/* Applies every key=value of spec (after "SID:") to l. */
static int apply_spec(sn_limits *l, const char *spec, char *err, size_t errlen)
{
    const char *p = strchr(spec, ':');
    if (!p || p == spec || p[1] == '\0') {
        snprintf(err, errlen, "expected SID:key=value[,key=value...] (SID may be *)");
        return SN_EINVAL;
    }
    p++;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p) {
            snprintf(err, errlen, "expected key=value, got '%.*s'", (int)len, p);
            return SN_EINVAL;
        }
        char val[128];
        snprintf(val, sizeof val, "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
        int rc = apply(l, p, (size_t)(eq - p), val, err, errlen);
        if (rc != SN_OK)
            return rc;
        p += len + (comma != NULL);
    }
    return SN_OK;
}

int sn_limits_check(const char *spec, char *err, size_t errlen)
{
    sn_limits l = SN_LIMITS_DEFAULT;
    return apply_spec(&l, spec, err, errlen);
}

sn_limits_table *sn_limits_new(const char *const *specs, int n)
{
    sn_limits_table *t = calloc(1, sizeof *t);
    if (!t || (n && !(t->spec = calloc((size_t)n, sizeof *t->spec)))) {
        free(t);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!(t->spec[i] = strdup(specs[i]))) {
            t->n = i;
            sn_limits_destroy(&t);
            return NULL;
        }
    }
    t->n = n;
    return t;
}

void sn_limits_destroy(sn_limits_table **tp)
{
    if (!tp || !*tp)
        return;
    for (int i = 0; i < (*tp)->n; i++)
        free((*tp)->spec[i]);
    free((*tp)->spec);
    free(*tp);
    *tp = NULL;
}

sn_limits sn_limits_of(const sn_limits_table *t, const char *stage)
{
    sn_limits l = SN_LIMITS_DEFAULT;
    char err[8];
    for (int pass = 0; pass < 2 && t; pass++) { /* "*" first, then the stage's own */
        for (int i = 0; i < t->n; i++) {
            const char *s = t->spec[i];
            size_t sl = strcspn(s, ":");
            int star = sl == 1 && s[0] == '*';
            int mine = sl == strlen(stage) && strncmp(s, stage, sl) == 0;
            if ((pass == 0 && star) || (pass == 1 && mine && !star))
                apply_spec(&l, s, err, sizeof err);
        }
    }
    return l;
}
