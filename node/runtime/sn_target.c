/* sn_target: a hand parser; targets are short strings typed by people, so every error says
 * which part is wrong. */
#include "sn_target.h"
#include "sn_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SN_EINVAL;
}

/* Copies s[0..n) into dst (cap bytes); SN_ELIMIT when it does not fit. */
static int copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return SN_ELIMIT;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return SN_OK;
}

/* NAME.cb (or NAME.* for release): the lock name is everything before the last '.'. */
static int parse_lock(const char *s, const char *whole, sn_target *t, char *err, size_t errlen)
{
    const char *dot = strrchr(s, '.');
    if (!dot || dot == s || dot[1] == '\0')
        return fail(err, errlen, "lock target '%s': expected NAME.handler", whole);
    if (copy(t->lock, sizeof t->lock, s, (size_t)(dot - s)) ||
        copy(t->msg, sizeof t->msg, dot + 1, strlen(dot + 1)))
        return fail(err, errlen, "lock target '%s': too long", whole);
    return SN_OK;
}

int sn_target_parse(const char *s, const char *sender_stage, sn_target *t, char *err,
                    size_t errlen)
{
    /* Empty strings, not a 1.3 KB memset: this runs on every stage.signal. */
    t->mode = 0;
    t->stage[0] = t->msg[0] = t->reply[0] = t->lock[0] = '\0';
    size_t len = strlen(s);
    if (len == 0)
        return fail(err, errlen, "empty target");
    if (len > SN_TARGET_MAX)
        return fail(err, errlen, "target longer than %d bytes", SN_TARGET_MAX);
    const char *whole = s;
    if (s[0] == '>' && s[1] == '>') {
        t->mode = SN_TARGET_EXTEND;
        return parse_lock(s + 2, whole, t, err, errlen);
    }
    if (s[0] == '>') {
        t->mode = SN_TARGET_LOCK;
        return parse_lock(s + 1, whole, t, err, errlen);
    }
    if (s[0] == '<') {
        t->mode = SN_TARGET_RELEASE;
        return parse_lock(s + 1, whole, t, err, errlen);
    }
    int mode = 0;
    switch (s[0]) {
    case ':': mode = SN_TARGET_SYNC; s++; break;
    case '*': mode = SN_TARGET_ALL; s++; break;
    case '=': mode = SN_TARGET_LOCAL; s++; break;
    case '+': mode = SN_TARGET_REMOTE; s++; break;
    default: break;
    }
    /* the reply part: after the last '=' */
    const char *eq = strrchr(s, '=');
    size_t body = eq ? (size_t)(eq - s) : strlen(s);
    if (eq) {
        if (eq[1] == '\0')
            return fail(err, errlen, "target '%s': empty reply handler after '='", whole);
        if (mode == SN_TARGET_SYNC)
            return fail(err, errlen, "target '%s': a synchronous call returns its results; "
                                     "it takes no reply handler", whole);
        if (copy(t->reply, sizeof t->reply, eq + 1, strlen(eq + 1)))
            return fail(err, errlen, "target '%s': reply handler too long", whole);
    }
    const char *colon = memchr(s, ':', body);
    const char *plus = memchr(s, '+', body);
    if (plus && (!colon || plus < colon) && mode == 0) { /* sid+msg */
        size_t sl = (size_t)(plus - s), ml = body - sl - 1;
        if (sl == 0 || ml == 0)
            return fail(err, errlen, "target '%s': expected sid+msg", whole);
        t->mode = SN_TARGET_ONE;
        if (copy(t->stage, sizeof t->stage, s, sl))
            return fail(err, errlen, "target '%s': stage id too long", whole);
        if ((size_t)snprintf(t->msg, sizeof t->msg, "%s:%.*s", sender_stage, (int)ml, plus + 1) >=
            sizeof t->msg)
            return fail(err, errlen, "target '%s': message id too long", whole);
        return SN_OK;
    }
    if (colon) {
        size_t sl = (size_t)(colon - s), ml = body - sl - 1;
        if (mode == SN_TARGET_SYNC)
            return fail(err, errlen, "target '%s': ':msg' calls the sender itself; it takes no "
                                     "stage id", whole);
        if (sl == 0)
            return fail(err, errlen, "target '%s': empty stage id before ':'", whole);
        if (ml == 0)
            return fail(err, errlen, "target '%s': empty message id after ':'", whole);
        if (copy(t->stage, sizeof t->stage, s, sl) ||
            copy(t->msg, sizeof t->msg, colon + 1, ml))
            return fail(err, errlen, "target '%s': too long", whole);
        t->mode = mode ? (sn_target_mode)mode : SN_TARGET_ONE;
        return SN_OK;
    }
    if (body == 0)
        return fail(err, errlen, "target '%s': empty message id", whole);
    if (copy(t->msg, sizeof t->msg, s, body))
        return fail(err, errlen, "target '%s': message id too long", whole);
    /* no stage id: the sender itself, or the sender's stage for *, =, + */
    t->mode = mode ? (sn_target_mode)mode : SN_TARGET_SELF;
    if (t->mode != SN_TARGET_SELF && t->mode != SN_TARGET_SYNC &&
        copy(t->stage, sizeof t->stage, sender_stage, strlen(sender_stage)))
        return fail(err, errlen, "target '%s': stage id too long", whole);
    return SN_OK;
}

static int separator(char c)
{
    return c == '.' || c == ':' || c == '?';
}

size_t sn_target_next(const char *msg, size_t len)
{
    /* STAGE's rule (stage/lua.cpp): '.', ':' and '?' separate, but not before the first
     * ':' (the stage part) unless a '?' comes after that ':' */
    const char *colon = strchr(msg, ':');
    const char *quest = strchr(msg, '?');
    size_t low = colon && (!quest || colon > quest) ? (size_t)(colon - msg) : 0;
    for (size_t i = len - 1; i > low; i--) {
        if (separator(msg[i - 1]))
            return i;
    }
    return 0;
}
