/* lua_logger: STAGE's logger.*: each argument goes through tostring, its substitutions are
 * expanded (%l %F %M %L %{ENV} %N{ENV} %{=name:level}, docs/lua-api.md), the pieces are
 * joined by tabs, and the whole is one record of the node's log at the chosen level. */
#include "lua_logger.h"
#include "lua_host.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Where the call came from, and where the record goes (changed by %{=name:level}). */
typedef struct call {
    lua_Debug ar;
    int have_ar;
    const char *func;
    sn_log_level level;
    char logger[64]; /* %{=name:...}; empty: the actor's own name */
} call;

/* STAGE's levels; trace has no level of its own in the node's log: it is written at debug. */
static int level_of(const char *name, size_t len, sn_log_level *level)
{
    static const struct {
        const char *name;
        sn_log_level level;
    } levels[] = {
        {"info", SN_LOG_INFO},   {"out", SN_LOG_INFO},    {"warn", SN_LOG_WARN},
        {"error", SN_LOG_ERROR}, {"trace", SN_LOG_DEBUG}, {"debug", SN_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strlen(levels[i].name) == len && strncasecmp(name, levels[i].name, len) == 0) {
            *level = levels[i].level;
            return 1;
        }
    return 0;
}

/* %{...}: k is the text between the braces; width < 0: none. */
static void brace(luaL_Buffer *b, call *c, const char *k, size_t klen, long width)
{
    if (klen > 0 && k[0] == '=') { /* =name:level */
        const char *colon = memchr(k, ':', klen);
        size_t nlen = colon ? (size_t)(colon - k - 1) : klen - 1;
        if (nlen > 0) {
            if (nlen >= sizeof c->logger) nlen = sizeof c->logger - 1;
            memcpy(c->logger, k + 1, nlen);
            c->logger[nlen] = '\0';
        }
        if (colon) level_of(colon + 1, klen - (size_t)(colon + 1 - k), &c->level);
        return;
    }
    char name[256];
    if (width == 0 || klen == 0 || klen >= sizeof name) return;
    memcpy(name, k, klen);
    name[klen] = '\0';
    const char *e = getenv(name);
    if (!e) return;
    size_t elen = strlen(e);
    if (width < 0) {
        luaL_addlstring(b, e, elen);
    } else if ((size_t)width <= elen) {
        luaL_addlstring(b, e, (size_t)width); /* cut to the width */
    } else {
        for (size_t i = elen; i < (size_t)width; i++) /* right-aligned in the width */
            luaL_addchar(b, ' ');
        luaL_addlstring(b, e, elen);
    }
}

/* Expands the string at the top into a new string, which replaces it. */
static void expand(lua_State *L, call *c)
{
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    const char *end = s + n;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (s < end) {
        const char *pct = memchr(s, '%', (size_t)(end - s));
        if (!pct) {
            luaL_addlstring(&b, s, (size_t)(end - s));
            break;
        }
        luaL_addlstring(&b, s, (size_t)(pct - s));
        const char *p = pct + 1;
        long width = -1;
        if (p < end && isdigit((unsigned char)*p)) {
            width = 0;
            while (p < end && isdigit((unsigned char)*p)) {
                if (width < 100000) width = width * 10 + (*p - '0');
                p++;
            }
        }
        char what = p < end ? *p : '\0';
        char num[32];
        switch (what) {
        case 'l':
            luaL_addstring(&b, c->have_ar ? c->ar.short_src : "?");
            snprintf(num, sizeof num, "%d", c->have_ar ? c->ar.currentline : 0);
            luaL_addstring(&b, " [");
            luaL_addstring(&b, c->func);
            luaL_addchar(&b, ':');
            luaL_addstring(&b, num);
            luaL_addchar(&b, ']');
            break;
        case 'F':
            luaL_addstring(&b, c->have_ar ? c->ar.short_src : "?");
            break;
        case 'M':
            luaL_addstring(&b, c->func);
            break;
        case 'L':
            snprintf(num, sizeof num, "%d", c->have_ar ? c->ar.currentline : 0);
            luaL_addstring(&b, num);
            break;
        case '%':
            luaL_addchar(&b, '%');
            break;
        case '{': {
            const char *close = memchr(p, '}', (size_t)(end - p));
            if (!close) goto literal; /* an unclosed brace is kept as it is */
            brace(&b, c, p + 1, (size_t)(close - p - 1), width);
            p = close;
            break;
        }
        default:
        literal: /* not a substitution: kept as written */
            luaL_addlstring(&b, pct, (size_t)(p - pct));
            s = p;
            continue;
        }
        s = p + 1;
    }
    luaL_pushresult(&b);
    lua_replace(L, -2);
}

static int log_at(lua_State *L, sn_log_level level)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int n = lua_gettop(L);
    call c = {.level = level, .func = "?"};
    if (lua_getstack(L, 1, &c.ar) && lua_getinfo(L, "nSl", &c.ar)) {
        c.have_ar = 1;
        c.func = c.ar.name                                       ? c.ar.name
                 : (c.ar.what && strcmp(c.ar.what, "main") == 0) ? "main chunk"
                                                                 : "?";
    }
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        expand(L, &c); /* pieces at n+1 .. 2n */
    }
    /* Pieces are joined by tabs; a piece that expands to nothing (a lone %{=name:level})
     * adds no tab. */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int any = 0;
    for (int i = 1; i <= n; i++) {
        size_t len;
        lua_tolstring(L, n + i, &len);
        if (len == 0) continue;
        if (any) luaL_addchar(&b, '\t');
        lua_pushvalue(L, n + i);
        luaL_addvalue(&b);
        any = 1;
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    sn_log_where where = {
        .file = c.have_ar ? c.ar.short_src : NULL,
        .line = c.have_ar ? c.ar.currentline : 0,
        .func = c.have_ar ? c.func : NULL,
        .actor = c.logger[0] ? host->who : NULL,
    };
    sn_log_put(host->log, c.level, c.logger[0] ? c.logger : host->who, &where, text, len);
    return 0;
}

static int l_info(lua_State *L)
{
    return log_at(L, SN_LOG_INFO);
}
static int l_warn(lua_State *L)
{
    return log_at(L, SN_LOG_WARN);
}
static int l_error(lua_State *L)
{
    return log_at(L, SN_LOG_ERROR);
}
static int l_trace(lua_State *L)
{
    return log_at(L, SN_LOG_DEBUG);
}

void sn_logger_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"out", l_info},    {"info", l_info},   {"warn", l_warn},
        {"error", l_error}, {"trace", l_trace}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_setglobal(L, "logger");
}
