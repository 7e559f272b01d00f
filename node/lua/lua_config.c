/* lua_config: settings -> "--option value" pairs. Unknown settings and wrong types are
 * errors that name the setting; values are then checked by sn_opts like any flag. */
#include "lua_config.h"
#include "sn_builtin.h"
#include "sn_error.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    {"broker_cert", "--broker-cert", 's'}, {"broker_key", "--broker-key", 's'},
    {"broker_ca", "--broker-ca", 's'},
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

static int stage_json_argv(const char *path, char ***argv, int *argc, int *nflags, char *err,
                           size_t errlen);

int sn_config_argv(const char *path, char ***argv, int *argc, int *nflags, char *err,
                   size_t errlen)
{
    if (sn_config_is_json(path))
        return stage_json_argv(path, argv, argc, nflags, err, errlen);
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

/* ---- STAGE's stage.json ---- */

int sn_config_is_json(const char *path)
{
    size_t l = strlen(path);
    if (l > 5 && strcmp(path + l - 5, ".json") == 0)
        return 1;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int c;
    while ((c = fgetc(f)) != EOF && isspace(c))
        ;
    fclose(f);
    return c == '{';
}

enum { JSON_MAX = 1 << 20 }; /* a stage.json is a few KiB; past this it is not one */

static cJSON *read_json(const char *path, char *err, size_t errlen, int *rc)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "config %s: cannot open it", path);
        *rc = SN_ENOENT;
        return NULL;
    }
    char *buf = malloc(JSON_MAX + 1);
    size_t n = buf ? fread(buf, 1, JSON_MAX + 1, f) : 0;
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "config %s: %s", path, sn_strerror(SN_ENOMEM));
        *rc = SN_ENOMEM;
        return NULL;
    }
    if (n > JSON_MAX) {
        free(buf);
        snprintf(err, errlen, "config %s: longer than %d bytes", path, JSON_MAX);
        *rc = SN_EINVAL;
        return NULL;
    }
    buf[n] = '\0';
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (!j || !cJSON_IsObject(j)) {
        int line = 1;
        for (const char *c = buf; !j && end && c < end && c < buf + n; c++)
            line += *c == '\n';
        if (j)
            snprintf(err, errlen, "config %s: a stage.json must be a JSON object", path);
        else
            snprintf(err, errlen, "config %s: not valid JSON (line %d)", path, line);
        cJSON_Delete(j);
        free(buf);
        *rc = SN_EINVAL;
        return NULL;
    }
    free(buf);
    *rc = SN_OK;
    return j;
}

static void warn(const char *path, const char *key, const char *why)
{
    fprintf(stderr, "stage-node: warning: config %s: '%s' ignored: %s\n", path, key, why);
}

/* "lua.so+stage", "=lua+stage", "luajit.so+stage": a Lua stage; its module name in *mod. */
static int is_lua_entry(const char *e, char *mod, size_t cap)
{
    if (*e == '=')
        e++;
    const char *plus = strchr(e, '+');
    size_t ml = plus ? (size_t)(plus - e) : strlen(e);
    snprintf(mod, cap, "%.*s", (int)ml, e);
    return strcmp(mod, "lua") == 0 || strcmp(mod, "lua.so") == 0 || strcmp(mod, "luajit") == 0 ||
           strcmp(mod, "luajit.so") == 0;
}

/* The stage id of a #startup entry: after its '+', else its module's name ("=route",
 * "index.so"). */
static void entry_sid(const char *e, char *out, size_t cap)
{
    const char *plus = strchr(e, '+');
    if (*e == '=')
        e++;
    if (plus)
        snprintf(out, cap, "%s", plus + 1);
    else
        snprintf(out, cap, "%.*s", (int)strcspn(e, "."), e);
}

/* The settings of a Lua stage: its module's object, and the entry's own object over it. */
static const cJSON *section_get(const cJSON *root, const char *mod, const char *entry,
                                const char *key)
{
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(root, entry);
    const cJSON *v = cJSON_IsObject(own) ? cJSON_GetObjectItemCaseSensitive(own, key) : NULL;
    if (v)
        return v;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, mod);
    return cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
}

/* "%package" folders lose STAGE's depth prefix ("[0]lib", "#0:lib"); "" is the current one. */
static void package_dir(const char *p, char *out, size_t cap)
{
    if (*p == '[' || *p == '#') {
        p++;
        while (isdigit((unsigned char)*p) || *p == '-')
            p++;
        while (*p == ']' || *p == ':')
            p++;
    }
    snprintf(out, cap, "%s", *p ? p : ".");
}

/* The script a Lua stage runs: STAGE's name ("start", "a.b") looked up in the packages. */
static int find_script(const cJSON *packages, const char *name, char *out, size_t cap)
{
    char file[1024];
    snprintf(file, sizeof file, "%s", name);
    size_t fl = strlen(file);
    if (!(fl > 4 && strcmp(file + fl - 4, ".lua") == 0)) {
        for (char *c = file; *c; c++)
            if (*c == '.' || *c == ':')
                *c = '/';
        snprintf(file + fl, sizeof file - fl, ".lua");
    }
    const cJSON *d;
    struct stat st;
    cJSON_ArrayForEach(d, packages) {
        if (!cJSON_IsString(d))
            continue;
        char dir[1024];
        package_dir(d->valuestring, dir, sizeof dir);
        snprintf(out, cap, "%s/%s", dir, file);
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    snprintf(out, cap, "%s", file);
    return stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *const ignored_keys[][2] = {
    {"#license", "stage-node needs no license"},
    {"#services", "no prefork here: actors share one process; a script opens its listeners "
                  "with broker.ready (docs/broker.md)"},
    {"#router", "stage-node's cluster has its own timings (--set heartbeat=, suspect=, down=)"},
    {"%odbc", "odbc.new takes the connection string or table itself (or an odbc.ini DSN name)"},
    {"%cluster", "the broker's cluster address: broker.ready and broker.join take their "
                 "addresses from the script (docs/broker.md)"},
    {"%reflush", "stage.load checks the file's size and mtime on every call"},
    {NULL, NULL},
};

static const char *why_ignored(const char *key)
{
    for (int i = 0; ignored_keys[i][0]; i++)
        if (strcmp(ignored_keys[i][0], key) == 0)
            return ignored_keys[i][1];
    return NULL;
}

/* One #startup entry's Lua stage: --actor SID=FILE:N, its %preload and %package. */
typedef struct lua_stage {
    char sid[256];
    char entry[300];
    char mod[64];
    int count;
} lua_stage;

static int stage_json_argv(const char *path, char ***argv, int *argc, int *nflags, char *err,
                           size_t errlen)
{
    *argv = NULL;
    *argc = *nflags = 0;
    int rc;
    cJSON *root = read_json(path, err, errlen, &rc);
    if (!root)
        return rc;
    strv opts = {0};
    lua_stage stages[64];
    int nstages = 0;
    char buf[4200];
    const cJSON *startup = cJSON_GetObjectItemCaseSensitive(root, "#startup");
    const cJSON *group, *item;
    cJSON_ArrayForEach(group, startup) { /* [["=route+route"], ["lua.so+stage"], ...] */
        const cJSON *list = cJSON_IsArray(group) ? group : NULL;
        cJSON *one = NULL;
        if (!list && cJSON_IsString(group))
            list = one = cJSON_CreateStringArray((const char *const[]){group->valuestring}, 1);
        cJSON_ArrayForEach(item, list) {
            char mod[64];
            if (!cJSON_IsString(item))
                continue;
            const char *e = item->valuestring;
            if (!is_lua_entry(e, mod, sizeof mod)) {
                char sid[64];
                entry_sid(e, sid, sizeof sid);
                snprintf(buf, sizeof buf, "#startup %s", e);
                if (strncmp(e, "curl", 4) == 0 || strstr(e, "+curl"))
                    warn(path, buf, "the curl stage is built into every node as stage 'curl' "
                                    "(docs/lua-api.md); the entry is not needed");
                else if (sn_builtin_is(sid))
                    warn(path, buf, "the built-in stages (route, ticket, index) start at "
                                    "their first use, on one home per cluster "
                                    "(docs/stages.md); the entry is not needed");
                else
                    warn(path, buf, "a C stage, not supported here: messages to it fail");
                continue;
            }
            const char *plus = strchr(e, '+');
            const char *sid = plus ? plus + 1 : "main";
            int k = 0;
            while (k < nstages && strcmp(stages[k].sid, sid) != 0)
                k++;
            if (k == nstages) {
                if (nstages == (int)(sizeof stages / sizeof *stages) || strlen(sid) >= 256) {
                    snprintf(err, errlen, "config %s: #startup: too many Lua stages, or a stage "
                             "id past 255 characters", path);
                    rc = SN_EINVAL;
                    break;
                }
                snprintf(stages[k].sid, sizeof stages[k].sid, "%s", sid);
                snprintf(stages[k].entry, sizeof stages[k].entry, "%s", *e == '=' ? e + 1 : e);
                snprintf(stages[k].mod, sizeof stages[k].mod, "%s", mod);
                stages[k].count = 0;
                nstages++;
            }
            stages[k].count++;
        }
        cJSON_Delete(one);
        if (rc != SN_OK)
            break;
    }
    if (rc == SN_OK && !nstages) {
        snprintf(err, errlen, "config %s: #startup names no Lua stage (\"lua.so+ID\")", path);
        rc = SN_EINVAL;
    }
    int preload_done = 0, package_done = 0;
    for (int k = 0; rc == SN_OK && k < nstages; k++) {
        lua_stage *st = &stages[k];
        const cJSON *packages = section_get(root, st->mod, st->entry, "%package");
        cJSON *one = NULL;
        if (cJSON_IsString(packages))
            packages = one = cJSON_CreateStringArray(
                (const char *const[]){packages->valuestring}, 1);
        if (!package_done) { /* one node, one package path: the first stage's */
            cJSON_ArrayForEach(item, packages) {
                if (!cJSON_IsString(item))
                    continue;
                package_dir(item->valuestring, buf, sizeof buf);
                if (push_str(&opts, "--package") || push_str(&opts, buf))
                    rc = SN_ENOMEM;
            }
            package_done = 1;
        }
        const cJSON *pre = section_get(root, st->mod, st->entry, "%preload");
        if (!preload_done && cJSON_IsString(pre)) {
            struct stat sb;
            if (stat(pre->valuestring, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                if (push_str(&opts, "--preload") || push_str(&opts, pre->valuestring))
                    rc = SN_ENOMEM;
            } else {
                warn(path, "%preload", "no such folder (STAGE skips it too)");
            }
            preload_done = 1;
        } else if (pre && !cJSON_IsString(pre)) {
            warn(path, "%preload", "stage-node takes one folder (a string)");
        }
        for (int i = 0; ignored_keys[i][0]; i++)
            if (ignored_keys[i][0][0] == '%' &&
                section_get(root, st->mod, st->entry, ignored_keys[i][0]))
                warn(path, ignored_keys[i][0], ignored_keys[i][1]);
        const cJSON *script = section_get(root, st->mod, st->entry, st->entry);
        if (!cJSON_IsString(script))
            script = cJSON_GetObjectItemCaseSensitive(root, st->entry);
        if (!cJSON_IsString(script)) {
            snprintf(err, errlen, "config %s: Lua stage '%s' names no script (\"%s\": "
                     "\"start\" in \"%s\")", path, st->sid, st->entry, st->mod);
            rc = SN_EINVAL;
        } else {
            char file[2048];
            if (!find_script(packages, script->valuestring, file, sizeof file)) {
                snprintf(err, errlen, "config %s: the script '%s' of stage '%s' is in no "
                         "%%package folder", path, script->valuestring, st->sid);
                rc = SN_EINVAL;
            } else {
                snprintf(buf, sizeof buf, "%s=%s:%d", st->sid, file, st->count);
                if (push_str(&opts, "--actor") || push_str(&opts, buf))
                    rc = SN_ENOMEM;
            }
        }
        cJSON_Delete(one);
    }
    const cJSON *threads = cJSON_GetObjectItemCaseSensitive(root, "#threads");
    const cJSON *t0 = cJSON_IsArray(threads) ? cJSON_GetArrayItem(threads, 0) : threads;
    if (rc == SN_OK && cJSON_IsNumber(t0)) {
        int n = t0->valueint < 1 ? 1 : t0->valueint > 1024 ? 1024 : t0->valueint;
        snprintf(buf, sizeof buf, "%d", n);
        if (push_str(&opts, "--threads") || push_str(&opts, buf))
            rc = SN_ENOMEM;
        if (cJSON_GetArraySize(threads) > 1)
            warn(path, "#threads[2]", "the queue length: each mailbox has its own cap "
                                      "(--stage SID:mailbox=N)");
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "#cluster");
    cJSON_ArrayForEach(item, cl) {
        if (rc != SN_OK)
            break;
        if (cJSON_IsNumber(item)) { /* the port peers connect to */
            snprintf(buf, sizeof buf, "tcp://127.0.0.1:%d", item->valueint);
            if (push_str(&opts, "--listen") || push_str(&opts, buf))
                rc = SN_ENOMEM; /* opened or not: sn_config_cluster_listen, once keys are known */
        } else if (cJSON_IsString(item) && item->valuestring[0] == '=') {
            snprintf(buf, sizeof buf, "#cluster %s", item->valuestring);
            warn(path, buf, "no backup cluster: a stage with no actor fails its messages");
        } else if (cJSON_IsString(item) && item->valuestring[0] == ':') {
            snprintf(buf, sizeof buf, "#cluster %s", item->valuestring);
            warn(path, buf, "name the address peers use with --advertise tcp://HOST:PORT");
        } else if (cJSON_IsString(item)) {
            if (push_str(&opts, "--join") || push_str(&opts, item->valuestring))
                rc = SN_ENOMEM;
        }
    }
    const cJSON *key;
    cJSON_ArrayForEach(key, root) { /* every other top-level key, named once */
        if (rc != SN_OK)
            break;
        const char *k = key->string;
        const char *why = why_ignored(k);
        if (why && k[0] == '#') {
            warn(path, k, why);
            continue;
        }
        if (!strcmp(k, "#startup") || !strcmp(k, "#threads") || !strcmp(k, "#cluster"))
            continue;
        int used = 0;
        for (int i = 0; i < nstages && !used; i++)
            used = !strcmp(k, stages[i].mod) || !strcmp(k, stages[i].entry);
        char mod[64];
        if (!used && is_lua_entry(k, mod, sizeof mod))
            warn(path, k, "the section of a Lua stage not in #startup: unused");
        else if (!used)
            warn(path, k, "a built-in or C stage's settings: unused (the built-in stages "
                          "take their limits from --set, docs/stages.md)");
    }
    cJSON_Delete(root);
    if (rc != SN_OK) {
        if (rc == SN_ENOMEM)
            snprintf(err, errlen, "config %s: %s", path, sn_strerror(rc));
        sn_config_free(opts.v, opts.n);
        return rc;
    }
    *argv = opts.v;
    *argc = *nflags = opts.n;
    return SN_OK;
}

const char *sn_config_cluster_listen(const char *path, char *const *argv, int nflags,
                                     const char *listen, int secured)
{
    int mine = 0; /* listen is the word a "#cluster" port made, not a --listen of the user */
    for (int i = 0; listen && i + 1 < nflags && !mine; i++)
        mine = argv[i + 1] == listen && strcmp(argv[i], "--listen") == 0;
    if (!mine || !path || !sn_config_is_json(path))
        return listen;
    const char *colon = strrchr(listen, ':');
    const char *port = colon ? colon + 1 : listen;
    if (secured) {
        fprintf(stderr, "stage-node: warning: config %s: \"#cluster\": port %s: listening on "
                "loopback only; other machines need --listen with --curve-secret\n", path, port);
        return listen;
    }
    /* A STAGE file has no keys to give, and a refusal (exit 2) would stop a file that
     * starts a node in STAGE: the node runs alone, and says what it takes to open it. */
    fprintf(stderr, "stage-node: warning: config %s: \"#cluster\": port %s not opened: cluster "
            "traffic needs CurveZMQ keys (code travels only between authenticated members); "
            "this node runs alone. To open it: stage-node keygen FILE, then --curve-secret "
            "FILE --curve-allow ALLOW (docs/security.md), or --insecure for development\n",
            path, port);
    return NULL;
}

/* Pushes value j as a Lua value (objects and arrays as tables, arrays from 1). */
static void push_json(lua_State *L, const cJSON *j)
{
    luaL_checkstack(L, 4, "config: nested too deep");
    if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        if (j->valuedouble == (double)(lua_Integer)j->valuedouble)
            lua_pushinteger(L, (lua_Integer)j->valuedouble);
        else
            lua_pushnumber(L, j->valuedouble);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        lua_newtable(L);
        const cJSON *c;
        lua_Integer i = 1;
        cJSON_ArrayForEach(c, j) {
            push_json(L, c);
            if (cJSON_IsArray(j))
                lua_rawseti(L, -2, i++);
            else
                lua_setfield(L, -2, c->string);
        }
    } else {
        lua_pushnil(L);
    }
}

void sn_config_push_stage(lua_State *L, const char *path, const char *sid)
{
    int rc;
    char err[256];
    cJSON *root = path && sn_config_is_json(path) ? read_json(path, err, sizeof err, &rc) : NULL;
    lua_newtable(L);
    if (!root)
        return;
    const cJSON *group, *item;
    const cJSON *startup = cJSON_GetObjectItemCaseSensitive(root, "#startup");
    cJSON_ArrayForEach(group, startup) { /* the section of sid's Lua stage, as STAGE merges */
        cJSON_ArrayForEach(item, group) {
            char mod[64];
            const char *plus;
            if (!cJSON_IsString(item) || !is_lua_entry(item->valuestring, mod, sizeof mod) ||
                !(plus = strchr(item->valuestring, '+')) || strcmp(plus + 1, sid) != 0)
                continue;
            const char *entry = item->valuestring[0] == '=' ? item->valuestring + 1
                                                             : item->valuestring;
            const cJSON *parts[2] = {cJSON_GetObjectItemCaseSensitive(root, mod),
                                     cJSON_GetObjectItemCaseSensitive(root, entry)};
            for (int p = 0; p < 2; p++) {
                const cJSON *c;
                if (!cJSON_IsObject(parts[p]))
                    continue;
                cJSON_ArrayForEach(c, parts[p]) {
                    push_json(L, c);
                    lua_setfield(L, -2, c->string);
                }
            }
            cJSON_Delete(root);
            return;
        }
    }
    cJSON_Delete(root);
}
