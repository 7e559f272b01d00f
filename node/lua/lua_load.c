/* lua_load: "file+name": file.lua is searched in each folder of the package path in order
 * (info[1] is the folder's index, from 0, as STAGE's depth); its chunk runs in the state's
 * base env and its first result is cached with the file's size and mtime. */
#include "lua_load.h"
#include "lua_guard.h"
#include "lua_sandbox.h"
#include "lua_host.h"
#include "sn_node.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char K_LOADED = 0; /* file -> {value=, size=, mtime=, path=, position=} */

void sn_load_open(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_LOADED);
}

/* Finds file in the package path: fills path, *st and returns the position (from 1), or 0. */
static int find_file(lua_State *L, const char *file, char *path, size_t cap, struct stat *st)
{
    sn_node *n = sn_lua_host_of(L)->node;
    size_t fl = strlen(file);
    const char *ext = fl > 4 && strcmp(file + fl - 4, ".lua") == 0 ? "" : ".lua";
    if (file[0] == '/') {
        snprintf(path, cap, "%s%s", file, ext);
        return stat(path, st) == 0 ? 1 : 0;
    }
    for (int i = 0;; i++) {
        const char *dir = n ? sn_node_package(n, i) : (i == 0 ? "scripts" : NULL);
        if (!dir)
            return 0;
        snprintf(path, cap, "%s/%s%s", dir, file, ext);
        if (stat(path, st) == 0 && S_ISREG(st->st_mode))
            return i + 1;
    }
}

/* The file part of spec ("file" or "file+name") as STAGE names it: "a.b" and "a:b" are
 * a/b.lua; a name ending in ".lua" is taken as it is. */
static void file_of(const char *spec, char *file, size_t cap)
{
    const char *plus = strchr(spec, '+');
    snprintf(file, cap, "%.*s", plus ? (int)(plus - spec) : (int)strlen(spec), spec);
    size_t fl = strlen(file);
    if (fl > 4 && strcmp(file + fl - 4, ".lua") == 0)
        return;
    for (char *c = file; *c; c++)
        if (*c == '.' || *c == ':')
            *c = '/';
}

/* Pushes the value of spec ("file" or "file+name") and its info table {depth (0-based),
 * path, mtime (whole seconds)}, and returns 1; or, when the file is in no package folder
 * and missing_ok, pushes nothing and returns 0. Raises on other errors. */
static int load_try(lua_State *L, const char *spec, int reload, int missing_ok)
{
    char file[1024];
    const char *plus = strchr(spec, '+');
    file_of(spec, file, sizeof file);
    if (!file[0])
        luaL_error(L, "stage.load: empty file name in '%s'", spec);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_LOADED);
    int cache = lua_gettop(L);
    int cached = lua_getfield(L, cache, file) == LUA_TTABLE;
    int entry = lua_gettop(L);
    char path[4096];
    struct stat st;
    int position = 0;
    if (!cached || reload) {
        position = find_file(L, file, path, sizeof path, &st);
        if (!position) {
            if (missing_ok) {
                lua_settop(L, cache - 1);
                return 0;
            }
            luaL_error(L, "stage.load: '%s' not found in the package path", file);
        }
    }
    if (cached && reload) {
        lua_getfield(L, entry, "size");
        lua_getfield(L, entry, "mtime");
        lua_getfield(L, entry, "path");
        int same = lua_tointeger(L, -3) == (lua_Integer)st.st_size &&
                   lua_tonumber(L, -2) == (lua_Number)st.st_mtim.tv_sec +
                                              (lua_Number)st.st_mtim.tv_nsec * 1e-9 &&
                   strcmp(lua_tostring(L, -1), path) == 0;
        lua_pop(L, 3);
        cached = same;
    }
    if (!cached) {
        lua_pop(L, 1);
        if (sn_lua_guard_loadfile(L, path) != LUA_OK)
            lua_error(L);
        sn_sandbox_push_base(L); /* the chunk's globals are the state's */
        lua_setupvalue(L, -2, 1);
        lua_call(L, 0, 1);
        lua_createtable(L, 0, 5);
        lua_insert(L, -2);
        lua_setfield(L, -2, "value");
        lua_pushinteger(L, (lua_Integer)st.st_size);
        lua_setfield(L, -2, "size");
        lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec * 1e-9);
        lua_setfield(L, -2, "mtime");
        lua_pushstring(L, path);
        lua_setfield(L, -2, "path");
        lua_pushinteger(L, position);
        lua_setfield(L, -2, "position");
        lua_pushvalue(L, -1);
        lua_setfield(L, cache, file);
    }
    entry = lua_gettop(L);
    lua_getfield(L, entry, "value");
    if (plus) {
        if (!lua_istable(L, -1))
            luaL_error(L, "stage.load: '%s' returned a %s, not a table with '%s'", file,
                       luaL_typename(L, -1), plus + 1);
        lua_getfield(L, -1, plus + 1);
        lua_remove(L, -2);
    }
    lua_createtable(L, 3, 0); /* info: STAGE's {depth, path, mtime} */
    lua_getfield(L, entry, "position");
    lua_pushinteger(L, lua_tointeger(L, -1) - 1);
    lua_rawseti(L, -3, 1);
    lua_pop(L, 1);
    lua_getfield(L, entry, "path");
    lua_rawseti(L, -2, 2);
    lua_getfield(L, entry, "mtime");
    lua_pushinteger(L, (lua_Integer)lua_tonumber(L, -1));
    lua_rawseti(L, -3, 3);
    lua_pop(L, 1);
    lua_replace(L, entry);
    lua_insert(L, entry); /* value, info */
    lua_remove(L, cache);
    return 1;
}

/* Pushes the value of spec and its info table; raises when the file is missing. */
static void load_spec(lua_State *L, const char *spec, int reload)
{
    load_try(L, spec, reload, 0);
}

/* STAGE's stage.load: without cb, the value (nothing, logged, for a missing file); with cb,
 * what cb(value, info) returns, and a missing file calls cb(nil, {file, name}). */
static int load_with(lua_State *L, int reload)
{
    const char *spec = luaL_checkstring(L, 1);
    int has_cb = !lua_isnoneornil(L, 2);
    if (has_cb)
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    if (!load_try(L, spec, reload, 1)) { /* in no package folder */
        char file[1024];
        file_of(spec, file, sizeof file);
        if (!has_cb) { /* STAGE returns nothing; the log says why */
            sn_lua_host *host = sn_lua_host_of(L);
            sn_log_write(host->log, SN_LOG_WARN, host->who, "stage.load: '%s' not found in "
                         "the package path", file);
            return 0;
        }
        lua_pushnil(L);
        lua_createtable(L, 2, 0);
        lua_pushstring(L, file);
        lua_rawseti(L, -2, 1);
        const char *plus = strchr(spec, '+');
        if (plus) {
            lua_pushstring(L, plus + 1);
            lua_rawseti(L, -2, 2);
        }
    }
    if (!has_cb) {
        lua_pop(L, 1);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_insert(L, 3);
    lua_call(L, 2, LUA_MULTRET);
    return lua_gettop(L) - 2;
}

int sn_load_lua(lua_State *L)
{
    return load_with(L, 1);
}

int sn_require_lua(lua_State *L)
{
    return load_with(L, 0);
}

/* Pushes every value of the table at index t, as STAGE's stage.call does with lua_next:
 * its sequence 1..#t in order first, then the other values in next() order. */
static void push_values(lua_State *L, int t)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    luaL_checkstack(L, (int)(n < 64 ? n : 64) + 4, "too many arguments");
    for (lua_Integer i = 1; i <= n; i++) {
        luaL_checkstack(L, 4, "too many arguments");
        lua_rawgeti(L, t, i);
    }
    for (lua_pushnil(L); lua_next(L, t);) {
        if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 && lua_tointeger(L, -2) <= n) {
            lua_pop(L, 1);
            continue;
        }
        luaL_checkstack(L, 4, "too many arguments");
        lua_insert(L, -2); /* value, key: the value stays */
    }
}

/* stage.call(f, ...), as STAGE's __call: f is a function, a table whose first value is one
 * ({f, args...}), or a "file+name" string that stage.load gives one; every table among the
 * other arguments is flattened into its values, other arguments pass as they are. */
int sn_call_lua(lua_State *L)
{
    int top = lua_gettop(L);
    luaL_checkany(L, 1);
    switch (lua_type(L, 1)) {
    case LUA_TSTRING:
        load_spec(L, lua_tostring(L, 1), 1);
        lua_pop(L, 1); /* the info */
        break;
    case LUA_TTABLE: push_values(L, 1); break;
    default: lua_pushvalue(L, 1); break;
    }
    if (lua_type(L, top + 1) != LUA_TFUNCTION)
        return luaL_error(L, "stage.call: expected a function (or a table or a \"file+name\" "
                             "string holding one), got %s", luaL_typename(L, top + 1));
    for (int i = 2; i <= top; i++) {
        if (lua_type(L, i) == LUA_TTABLE) {
            push_values(L, i);
        } else {
            luaL_checkstack(L, 4, "too many arguments");
            lua_pushvalue(L, i);
        }
    }
    lua_call(L, lua_gettop(L) - top - 1, LUA_MULTRET);
    return lua_gettop(L) - top;
}
