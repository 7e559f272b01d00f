/* lua_config: settings -> "--option value" pairs. Unknown settings and wrong types are
 * errors that name the setting; values are then checked by sn_opts like any flag. */
#include "lua_config.h"
#include "sn_error.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest stage id a config may name: as the router and the wire. */
#define SN_CONFIG_STAGE_ID_MAX 255

typedef struct strv {
    char **v;
    int n, cap;
} strv;

static int push_str(strv *s, const char *str)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return SN_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(str)))
        return SN_ENOMEM;
    s->n++;
    return SN_OK;
}

void sn_config_free(char **argv, int argc)
{
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

typedef struct setting {
    const char *key;
    const char *flag;
    char kind; /* s: string, l: string or list, i: integer, b: boolean, a: actors, S: script */
} setting;

static const setting settings[] = {
    {"name", "--name", 's'},           {"listen", "--listen", 's'},
    {"advertise", "--advertise", 's'},
    {"join", "--join", 'l'},           {"cluster", "--cluster", 's'},
    {"actors", "--actor", 'a'},        {"threads", "--threads", 'i'},
    {"preload", "--preload", 's'},     {"package", "--package", 'l'},
    {"http", "--http", 's'},           {"curve_secret", "--curve-secret", 's'},
    {"curve_allow", "--curve-allow", 's'}, {"insecure", "--insecure", 'b'},
    {"log_level", "--log-level", 's'}, {"log_format", "--log-format", 's'}, {"script", NULL, 'S'},
    {"args", NULL, 'A'},               {"stages", "--stage", 'T'},
    {NULL, NULL, 0},
};

/* Converts the value at the top for setting s; returns SN_OK or SN_EINVAL (err set). */
static int convert(lua_State *L, const setting *s, strv *opts, strv *script, strv *args,
                   const char *path, char *err, size_t errlen)
{
    int t = lua_type(L, -1);
#define BAD(what) \
    (snprintf(err, errlen, "config %s: '%s' must be %s, not %s", path, s->key, what, \
              lua_typename(L, t)), SN_EINVAL)
    switch (s->kind) {
    case 's':
        if (t != LUA_TSTRING)
            return BAD("a string");
        return push_str(opts, s->flag) || push_str(opts, lua_tostring(L, -1)) ? SN_ENOMEM : SN_OK;
    case 'i': {
        if (!lua_isinteger(L, -1))
            return BAD("an integer");
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -1));
        return push_str(opts, s->flag) || push_str(opts, num) ? SN_ENOMEM : SN_OK;
    }
    case 'b':
        if (t != LUA_TBOOLEAN)
            return BAD("a boolean");
        return lua_toboolean(L, -1) && push_str(opts, s->flag) ? SN_ENOMEM : SN_OK;
    case 'T': /* stages = { SID = { key = value, ... } } */
        if (t != LUA_TTABLE)
            return BAD("a table of stage ids");
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1)) {
                snprintf(err, errlen, "config %s: stages must map stage ids to tables of limits",
                         path);
                return SN_EINVAL;
            }
            char spec[1024];
            size_t idlen = lua_rawlen(L, -2);
            if (idlen > SN_CONFIG_STAGE_ID_MAX) { /* a longer one read past spec */
                snprintf(err, errlen, "config %s: stages: a stage id of %zu characters (at "
                         "most %d)", path, idlen, SN_CONFIG_STAGE_ID_MAX);
                return SN_EINVAL;
            }
            size_t at = (size_t)snprintf(spec, sizeof spec, "%s:", lua_tostring(L, -2));
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                if (lua_type(L, -2) != LUA_TSTRING || !(lua_type(L, -1) == LUA_TSTRING ||
                                                       lua_type(L, -1) == LUA_TNUMBER)) {
                    snprintf(err, errlen, "config %s: stages.%s: limits are name = value",
                             path, lua_tostring(L, -4));
                    return SN_EINVAL;
                }
                lua_pushvalue(L, -1); /* tostring on a copy: keep lua_next's key intact */
                at += (size_t)snprintf(spec + at, sizeof spec - at, "%s%s=%s",
                                       spec[at - 1] == ':' ? "" : ",", lua_tostring(L, -3),
                                       lua_tostring(L, -1));
                lua_pop(L, 2);
                if (at >= sizeof spec) {
                    snprintf(err, errlen, "config %s: stages.%s: the limits are longer than "
                             "%zu characters", path, lua_tostring(L, -3), sizeof spec - 1);
                    return SN_EINVAL;
                }
            }
            lua_pop(L, 1);
            if (push_str(opts, s->flag) || push_str(opts, spec))
                return SN_ENOMEM;
        }
        return SN_OK;
    case 'S':
        if (t != LUA_TSTRING)
            return BAD("a string");
        return push_str(script, lua_tostring(L, -1));
    case 'l':
    case 'a':
    case 'A':
        if (t == LUA_TSTRING && s->kind == 'l')
            return push_str(opts, s->flag) || push_str(opts, lua_tostring(L, -1)) ? SN_ENOMEM
                                                                                 : SN_OK;
        if (t != LUA_TTABLE)
            return BAD(s->kind == 'l' ? "a string or a list of strings" : "a list");
        for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
            int et = lua_rawgeti(L, -1, i);
            char spec[4200];
            if (et == LUA_TSTRING) {
                snprintf(spec, sizeof spec, "%s", lua_tostring(L, -1));
            } else if (et == LUA_TTABLE && s->kind == 'a') { /* {stage=, file=, count=} */
                lua_getfield(L, -1, "stage");
                lua_getfield(L, -2, "file");
                lua_getfield(L, -3, "count");
                if (!lua_isstring(L, -3) || !lua_isstring(L, -2) ||
                    !(lua_isnil(L, -1) || lua_isinteger(L, -1))) {
                    snprintf(err, errlen, "config %s: actors[%d] must be \"SID=FILE[:N]\" or "
                             "{stage=, file=, count=}", path, (int)i);
                    return SN_EINVAL;
                }
                snprintf(spec, sizeof spec, "%s=%s:%lld", lua_tostring(L, -3),
                         lua_tostring(L, -2), lua_isnil(L, -1) ? 1LL : (long long)lua_tointeger(L, -1));
                lua_pop(L, 3);
            } else {
                snprintf(err, errlen, "config %s: %s[%d] must be a string, not %s", path, s->key,
                         (int)i, lua_typename(L, et));
                return SN_EINVAL;
            }
            lua_pop(L, 1);
            int rc = s->kind == 'A' ? push_str(args, spec)
                                    : (push_str(opts, s->flag) || push_str(opts, spec));
            if (rc)
                return SN_ENOMEM;
        }
        return SN_OK;
    }
#undef BAD
    return SN_OK;
}

int sn_config_argv(const char *path, char ***argv, int *argc, int *nflags, char *err,
                   size_t errlen)
{
    *argv = NULL;
    *argc = 0;
    *nflags = 0;
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(err, errlen, "config %s: %s", path, sn_strerror(SN_ENOMEM));
        return SN_ENOMEM;
    }
    luaL_requiref(L, "_G", luaopen_base, 1);
    luaL_requiref(L, "string", luaopen_string, 1);
    luaL_requiref(L, "table", luaopen_table, 1);
    lua_settop(L, 0);
    int rc = SN_OK;
    strv opts = {0}, script = {0}, args = {0};
    if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        snprintf(err, errlen, "config: %s", lua_tostring(L, -1));
        rc = lua_tostring(L, -1) && strstr(lua_tostring(L, -1), "cannot open") ? SN_ENOENT
                                                                              : SN_EINVAL;
    } else if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "config %s: must return a table of settings, not %s", path,
                 luaL_typename(L, -1));
        rc = SN_EINVAL;
    } else {
        lua_pushnil(L);
        while (rc == SN_OK && lua_next(L, 1)) {
            const setting *s = settings;
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            while (s->key && (!key || strcmp(s->key, key) != 0))
                s++;
            if (!s->key) {
                snprintf(err, errlen, "config %s: unknown setting '%s'", path,
                         key ? key : luaL_typename(L, -2));
                rc = SN_EINVAL;
                break;
            }
            rc = convert(L, s, &opts, &script, &args, path, err, errlen);
            lua_pop(L, 1);
        }
    }
    lua_close(L);
    if (rc == SN_OK && args.n && !script.n) {
        snprintf(err, errlen, "config %s: 'args' needs a 'script'", path);
        rc = SN_EINVAL;
    }
    int flags = opts.n;
    for (int i = 0; rc == SN_OK && i < script.n; i++)
        rc = push_str(&opts, script.v[i]);
    for (int i = 0; rc == SN_OK && i < args.n; i++)
        rc = push_str(&opts, args.v[i]);
    sn_config_free(script.v, script.n);
    sn_config_free(args.v, args.n);
    if (rc != SN_OK) {
        if (rc == SN_ENOMEM)
            snprintf(err, errlen, "config %s: %s", path, sn_strerror(rc));
        sn_config_free(opts.v, opts.n);
        return rc;
    }
    *argv = opts.v;
    *argc = opts.n;
    *nflags = flags;
    return SN_OK;
}
