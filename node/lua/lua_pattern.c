/* lua_pattern: string.find, match, gmatch and gsub with a matcher that counts its steps and
 * checks the governor's budget every SN_PATTERN_STEPS of them. Lua's own matcher runs
 * inside C, where the budget hook never fires: ("a"):rep(130):find(("a*"):rep(4) .. "b")
 * backtracks for seconds. The patterns, captures, results and error messages are those of
 * Lua 5.3 (reference manual, 6.4.1); plain finds still go to Lua's own string.find. */
#include "lua_pattern.h"
#include "lua_host.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stddef.h>
#include <string.h>

enum {
    MAX_CAPTURES = 32, /* as Lua's LUA_MAXCAPTURES */
    MAX_DEPTH = 200, /* nested matches (recursion), as Lua's MAXCCALLS */
    CAP_UNFINISHED = -1,
    CAP_POSITION = -2,
};

#define ESC '%'
#define SPECIALS "^$*+?.([%-"

typedef struct matcher {
    const char *src_init, *src_end; /* the subject */
    const char *p_end;              /* end of the pattern */
    lua_State *L;
    int depth_left;
    int level; /* captures open or closed so far */
    unsigned steps;
    struct {
        const char *init;
        ptrdiff_t len; /* or CAP_UNFINISHED, CAP_POSITION */
    } capture[MAX_CAPTURES];
} matcher;

/* Every SN_PATTERN_STEPS steps (a match attempt, one subject character tried by a
 * repetition or a %b scan) the budget is checked; past it this raises. */
static void step(matcher *m)
{
    if (++m->steps >= SN_PATTERN_STEPS) {
        m->steps = 0;
        sn_lua_budget_check(m->L);
    }
}

static const char *match(matcher *m, const char *s, const char *p);

static int capture_index(matcher *m, int c)
{
    int l = c - '1';
    if (l < 0 || l >= m->level || m->capture[l].len == CAP_UNFINISHED)
        return luaL_error(m->L, "invalid capture index %%%d", l + 1);
    return l;
}

static int open_capture(matcher *m)
{
    for (int l = m->level - 1; l >= 0; l--)
        if (m->capture[l].len == CAP_UNFINISHED)
            return l;
    return luaL_error(m->L, "invalid pattern capture");
}

/* The end of the single-character class that starts at p. */
static const char *class_end(matcher *m, const char *p)
{
    char c = *p++;
    if (c == ESC) {
        if (p == m->p_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^')
            p++;
        do { /* up to the closing ']'; the first one may be literal */
            if (p == m->p_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            if (*(p++) == ESC && p < m->p_end)
                p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* Does c belong to %cl? */
static int in_class(int c, int cl)
{
    int yes;
    switch (tolower(cl)) {
    case 'a': yes = isalpha(c); break;
    case 'c': yes = iscntrl(c); break;
    case 'd': yes = isdigit(c); break;
    case 'g': yes = isgraph(c); break;
    case 'l': yes = islower(c); break;
    case 'p': yes = ispunct(c); break;
    case 's': yes = isspace(c); break;
    case 'u': yes = isupper(c); break;
    case 'w': yes = isalnum(c); break;
    case 'x': yes = isxdigit(c); break;
    case 'z': yes = c == 0; break;
    default: return cl == c; /* an escaped literal */
    }
    return isupper(cl) ? !yes : yes;
}

/* Does c belong to the set [..] from p (at '[') to ec (at ']')? */
static int in_set(int c, const char *p, const char *ec)
{
    int found = 1;
    if (*(p + 1) == '^') {
        found = 0;
        p++;
    }
    while (++p < ec) {
        if (*p == ESC) {
            p++;
            if (in_class(c, (unsigned char)*p))
                return found;
        } else if (*(p + 1) == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p)
                return found;
        } else if ((unsigned char)*p == c) {
            return found;
        }
    }
    return !found;
}

/* Does the subject character at s match the class from p to ep? */
static int single(matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->src_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case ESC: return in_class(c, (unsigned char)*(p + 1));
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* %bxy at p (p points at x). */
static const char *balance(matcher *m, const char *s, const char *p)
{
    if (p >= m->p_end - 1)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != *p)
        return NULL;
    char open = *p, close = *(p + 1);
    int depth = 1;
    while (++s < m->src_end) {
        step(m);
        if (*s == close) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

/* Greedy repetition (*, +): the longest run first, then shorter ones. */
static const char *greedy(matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t n = 0;
    while (single(m, s + n, p, ep)) {
        step(m);
        n++;
    }
    for (; n >= 0; n--) {
        const char *r = match(m, s + n, ep + 1);
        if (r)
            return r;
    }
    return NULL;
}

/* Lazy repetition (-): the shortest run first. */
static const char *lazy(matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = match(m, s, ep + 1);
        if (r)
            return r;
        if (!single(m, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *capture_begin(matcher *m, const char *s, const char *p, int what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->capture[m->level].init = s;
    m->capture[m->level].len = what;
    m->level++;
    const char *r = match(m, s, p);
    if (!r)
        m->level--;
    return r;
}

static const char *capture_end(matcher *m, const char *s, const char *p)
{
    int l = open_capture(m);
    m->capture[l].len = s - m->capture[l].init;
    const char *r = match(m, s, p);
    if (!r)
        m->capture[l].len = CAP_UNFINISHED;
    return r;
}

/* %1..%9: the text of an earlier capture again. */
static const char *backref(matcher *m, const char *s, int c)
{
    int l = capture_index(m, c);
    size_t len = (size_t)m->capture[l].len;
    if ((size_t)(m->src_end - s) >= len && memcmp(m->capture[l].init, s, len) == 0)
        return s + len;
    return NULL;
}

/* Matches the pattern from p against the subject from s: the end of the match, or NULL. */
static const char *match(matcher *m, const char *s, const char *p)
{
    if (m->depth_left-- == 0)
        luaL_error(m->L, "pattern too complex");
    step(m);
    while (p != m->p_end && s) {
        if (*p == '(') {
            s = *(p + 1) == ')' ? capture_begin(m, s, p + 2, CAP_POSITION)
                                : capture_begin(m, s, p + 1, CAP_UNFINISHED);
            break;
        }
        if (*p == ')') {
            s = capture_end(m, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == m->p_end) {
            s = s == m->src_end ? s : NULL;
            break;
        }
        if (*p == ESC && *(p + 1) == 'b') {
            s = balance(m, s, p + 2);
            p += 4;
            continue;
        }
        if (*p == ESC && *(p + 1) == 'f') { /* frontier */
            p += 2;
            if (*p != '[')
                luaL_error(m->L, "missing '[' after '%%f' in pattern");
            const char *ep = class_end(m, p);
            int prev = s == m->src_init ? 0 : (unsigned char)*(s - 1);
            int cur = s < m->src_end ? (unsigned char)*s : 0;
            if (!in_set(prev, p, ep - 1) && in_set(cur, p, ep - 1)) {
                p = ep;
                continue;
            }
            s = NULL;
            break;
        }
        if (*p == ESC && isdigit((unsigned char)*(p + 1))) {
            s = backref(m, s, (unsigned char)*(p + 1));
            p += 2;
            continue;
        }
        const char *ep = class_end(m, p); /* a single-character class, maybe repeated */
        if (!single(m, s, p, ep)) {
            if (*ep == '*' || *ep == '?' || *ep == '-') { /* zero repetitions are fine */
                p = ep + 1;
                continue;
            }
            s = NULL;
            break;
        }
        if (*ep == '?') {
            const char *r = match(m, s + 1, ep + 1);
            if (r) {
                s = r;
                break;
            }
            p = ep + 1;
            continue;
        }
        if (*ep == '+') {
            s = greedy(m, s + 1, p, ep);
            break;
        }
        if (*ep == '*') {
            s = greedy(m, s, p, ep);
            break;
        }
        if (*ep == '-') {
            s = lazy(m, s, p, ep);
            break;
        }
        s++;
        p = ep;
    }
    m->depth_left++;
    return s;
}

static void matcher_init(matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp)
{
    m->L = L;
    m->src_init = s;
    m->src_end = s + ls;
    m->p_end = p + lp;
    m->steps = 0;
}

static void matcher_reset(matcher *m)
{
    m->level = 0;
    m->depth_left = MAX_DEPTH;
}

/* Pushes capture i (or the whole match s..e when the pattern has no capture). */
static void push_capture(matcher *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->capture[i].len;
    if (len == CAP_UNFINISHED)
        luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(m->L, (m->capture[i].init - m->src_init) + 1);
    else
        lua_pushlstring(m->L, m->capture[i].init, (size_t)len);
}

static int push_captures(matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (memchr(SPECIALS, p[i], sizeof SPECIALS - 1))
            return 1;
    return 0;
}

/* A string position from Lua (negative: from the end) as an offset from 1. */
static size_t position(lua_Integer pos, size_t len)
{
    if (pos >= 0)
        return (size_t)pos;
    if ((size_t)0 - (size_t)pos > len)
        return 0;
    return len + (size_t)pos + 1;
}

/* find (upvalue 1: Lua's own string.find, for plain searches) and match. */
static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = position(luaL_optinteger(L, 3, 1), ls);
    if (init < 1)
        init = 1;
    if (init > ls + 1) {
        lua_pushnil(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
        return lua_gettop(L);
    }
    matcher m;
    int anchor = *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    matcher_init(&m, L, s, ls, p, lp);
    const char *s1 = s + init - 1;
    do {
        matcher_reset(&m);
        const char *e = match(&m, s1, p);
        if (e) {
            if (!find)
                return push_captures(&m, s1, e);
            lua_pushinteger(L, (s1 - s) + 1);
            lua_pushinteger(L, e - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
    } while (s1++ < m.src_end && !anchor);
    lua_pushnil(L);
    return 1;
}

static int l_find(lua_State *L)
{
    return find_or_match(L, 1);
}

static int l_match(lua_State *L)
{
    return find_or_match(L, 0);
}

typedef struct gmatch_state {
    const char *src, *p, *last;
    matcher m;
} gmatch_state;

/* upvalues: the subject, the pattern, the state */
static int gmatch_next(lua_State *L)
{
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L;
    for (const char *src = g->src; src <= g->m.src_end; src++) {
        matcher_reset(&g->m);
        const char *e = match(&g->m, src, g->p);
        if (e && e != g->last) {
            g->src = g->last = e;
            return push_captures(&g->m, src, e);
        }
    }
    return 0;
}

static int l_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    lua_settop(L, 2); /* the closure keeps both alive */
    gmatch_state *g = lua_newuserdata(L, sizeof *g);
    matcher_init(&g->m, L, s, ls, p, lp);
    g->src = s;
    g->p = p;
    g->last = NULL;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* Appends the replacement string (argument 3) with %0..%9 and %% expanded. */
static void add_string(matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    size_t l;
    const char *r = lua_tolstring(L, 3, &l);
    for (size_t i = 0; i < l; i++) {
        if (r[i] != ESC) {
            luaL_addchar(b, r[i]);
            continue;
        }
        i++;
        if (i < l && isdigit((unsigned char)r[i])) {
            if (r[i] == '0') {
                luaL_addlstring(b, s, (size_t)(e - s));
            } else {
                push_capture(m, r[i] - '1', s, e);
                luaL_tolstring(L, -1, NULL);
                lua_remove(L, -2);
                luaL_addvalue(b);
            }
        } else {
            if (i >= l || r[i] != ESC)
                luaL_error(L, "invalid use of '%c' in replacement string", ESC);
            luaL_addchar(b, r[i]);
        }
    }
}

static void add_value(matcher *m, luaL_Buffer *b, const char *s, const char *e, int tr)
{
    lua_State *L = m->L;
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_string(m, b, s, e);
        return;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

static int l_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                         tr == LUA_TTABLE, 3, "string/function/table expected");
    const char *last = NULL;
    int anchor = *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    matcher m;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    matcher_init(&m, L, src, ls, p, lp);
    lua_Integer n = 0;
    while (n < max) {
        matcher_reset(&m);
        const char *e = match(&m, src, p);
        if (e && e != last) {
            n++;
            add_value(&m, &b, src, e, tr);
            src = last = e;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
    }
    luaL_addlstring(&b, src, (size_t)(m.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

void sn_pattern_open(lua_State *L)
{
    if (lua_getglobal(L, "string") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, "find");
    lua_pushcclosure(L, l_find, 1);
    lua_setfield(L, -2, "find");
    lua_pushcfunction(L, l_match);
    lua_setfield(L, -2, "match");
    lua_pushcfunction(L, l_gmatch);
    lua_setfield(L, -2, "gmatch");
    lua_pushcfunction(L, l_gsub);
    lua_setfield(L, -2, "gsub");
    lua_pop(L, 1);
}
