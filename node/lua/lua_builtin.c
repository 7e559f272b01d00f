/* lua_builtin: the home is decided in the runtime (sn_builtin), the same for every sender;
 * here only the signal is pointed at it. */
#include "lua_builtin.h"
#include "lua_host.h"
#include "sn_builtin.h"
#include "sn_cluster.h"
#include "sn_error.h"
#include "sn_log.h"
#include "sn_opts.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SETTLE_WAIT_MS = 5000 }; /* a joining node's wait for the members' registries
                                   (--set builtin.settle_ms) */

void sn_lua_builtin_route(lua_State *L, const sn_target *t, sn_send *s, char *home, size_t cap)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || (t->mode != SN_TARGET_ONE && t->mode != SN_TARGET_ALL) ||
        !sn_builtin_is(t->stage))
        return;
    int hashed = 0;
    int there = sn_builtin_home(host->node, t->stage, home, cap, &hashed);
    sn_cluster *c = host->ctx ? host->ctx->cluster : NULL;
    if (hashed && c && !sn_cluster_settled(c)) {
        /* No running home known, and this node is joining or lacks a member's registry: a
         * guess could start a second, empty home. This worker waits (bounded) until the
         * members' registries are in, then chooses; past the bound the send fails as to a
         * home that is gone, "node down" (no member is named ""). */
        long wait = sn_builtin_setting(host->node, "builtin.settle_ms", SETTLE_WAIT_MS);
        for (long i = 0; i < wait && !sn_cluster_settled(c); i++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        if (!sn_cluster_settled(c)) {
            sn_log_write(host->log, SN_LOG_WARN, host->who, "signal to built-in stage '%s': "
                         "this node does not know yet whether another node runs it (joining, "
                         "or a member's registry missing after %ld ms, --set "
                         "builtin.settle_ms): %s", t->stage, wait, sn_strerror(SN_EDOWN));
            home[0] = '\0';
            s->node = home;
            return;
        }
        there = sn_builtin_home(host->node, t->stage, home, cap, &hashed);
    }
    if (there) {
        s->node = home;
        return;
    }
    if (sn_builtin_start(host->node, t->stage) == SN_OK)
        s->scope = SN_SCOPE_LOCAL;
}

int sn_lua_builtin_setting(lua_State *L, const char *key)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const sn_opts *o = host->node ? sn_node_opts(host->node) : NULL;
    size_t len = strlen(key);
    for (int i = o ? o->builtin.n - 1 : -1; i >= 0; i--) { /* the last one given wins */
        const char *v = o->builtin.item[i];
        if (strncmp(v, key, len) == 0 && v[len] == '=') {
            lua_pushinteger(L, (lua_Integer)strtoll(v + len + 1, NULL, 10));
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}

/* ---- stage.builtin's stub ---------------------------------------------------------------
 * preload/stages.lua keeps its definitions in a long comment, compiled at their first use
 * (issue 17: spawn time and memory per actor). The stub was Lua at the file's end, which
 * cost every state ~6 KiB of prototypes; here it is C closures sharing one upvalue, a box:
 * [1] the chunk name of the file that armed it ("@path"), [2] the globals its definitions
 * run in. The metatable carries a raw marker, so a script's own metatable is never
 * touched. */
static const char K_BUILTIN = 0;

/* Compiles the definitions into t (stage.builtin) once: drops the stub metatable first, so
 * the definitions (and a failure) see a plain table, as the Lua stub did. */
static void builtin_define(lua_State *L, int t)
{
    t = lua_absindex(L, t);
    if (!lua_getmetatable(L, t))
        return;
    int stub = lua_rawgetp(L, -1, &K_BUILTIN) != LUA_TNIL;
    lua_pop(L, 2);
    if (!stub || lua_rawgeti(L, lua_upvalueindex(1), 1) != LUA_TSTRING) {
        lua_pop(L, 1);
        return; /* defined already, or never armed (no stages.lua): an empty table */
    }
    int top = lua_gettop(L);
    lua_pushnil(L);
    lua_setmetatable(L, t);
    const char *source = lua_tostring(L, top);
    FILE *f = source[0] == '@' ? fopen(source + 1, "rb") : NULL;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t got;
    char chunk[4096];
    while (f && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        luaL_addlstring(&b, chunk, got);
    if (f)
        fclose(f);
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    static const char OPEN[] = "--[==[\n", CLOSE[] = "]==]";
    const char *body = f ? strstr(text, OPEN) : NULL;
    const char *end = body ? strstr(body + sizeof OPEN - 1, CLOSE) : NULL;
    if (!end)
        luaL_error(L, "stage.builtin: cannot read the definitions back from %s (moved or "
                   "changed since the state started?)", source);
    body += sizeof OPEN - 1;
    luaL_buffinit(L, &b); /* the same line numbers: a newline for each line before the body */
    for (const char *p = text; p < body; p++)
        if (*p == '\n')
            luaL_addchar(&b, '\n');
    luaL_addlstring(&b, body, (size_t)(end - body));
    luaL_pushresult(&b);
    const char *code = lua_tolstring(L, -1, &len);
    if (luaL_loadbufferx(L, code, len, source, "t") != LUA_OK)
        lua_error(L);
    lua_rawgeti(L, lua_upvalueindex(1), 2);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    lua_call(L, 0, 0);
    lua_settop(L, top - 1);
}

static int builtin_index(lua_State *L) /* __index(t, k) */
{
    builtin_define(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* __newindex(t, k, v): stages.lua's `stage.builtin[stage] = _ENV` arms the stub (the
 * caller's chunk name); any other write defines first, then sets. */
static int builtin_newindex(lua_State *L)
{
    lua_getglobal(L, "stage");
    int arm = lua_rawgeti(L, lua_upvalueindex(1), 1) != LUA_TSTRING && lua_rawequal(L, 2, -2);
    lua_pop(L, 2);
    lua_Debug ar;
    if (arm && lua_getstack(L, 1, &ar) && lua_getinfo(L, "S", &ar)) {
        lua_pushstring(L, ar.source);
        lua_rawseti(L, lua_upvalueindex(1), 1);
        lua_pushvalue(L, 3);
        lua_rawseti(L, lua_upvalueindex(1), 2);
        return 0;
    }
    builtin_define(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1); /* the stub's own table: defined now, or never armed */
    return 0;
}

static int builtin_pairs(lua_State *L) /* __pairs(t) */
{
    builtin_define(L, 1);
    lua_pushcfunction(L, sn_lua_rawnext);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* stage.actor(...) before the definitions: defines them (stage.actor among them), then
 * calls the real one. */
static int builtin_actor(lua_State *L)
{
    int n = lua_gettop(L);
    lua_getglobal(L, "stage");
    lua_getfield(L, -1, "builtin");
    if (lua_rawgeti(L, lua_upvalueindex(1), 1) != LUA_TSTRING)
        return luaL_error(L, "stage.actor: defined by preload/stages.lua, which this node's "
                          "preload folder does not have");
    lua_pop(L, 1);
    builtin_define(L, -1);
    lua_getfield(L, n + 1, "actor");
    if (lua_tocfunction(L, -1) == builtin_actor)
        return luaL_error(L, "stage.actor: preload/stages.lua did not define it");
    lua_insert(L, 1);
    lua_settop(L, n + 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

void sn_lua_builtin_open(lua_State *L)
{
    lua_getglobal(L, "stage");
    int stage = lua_gettop(L);
    lua_newtable(L);           /* stage+1: stage.builtin */
    lua_createtable(L, 2, 0);  /* stage+2: the box, armed by stages.lua */
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &K_BUILTIN);
    static const struct {
        const char *event;
        lua_CFunction f;
    } events[] = {{"__index", builtin_index}, {"__newindex", builtin_newindex},
                  {"__pairs", builtin_pairs}};
    for (size_t e = 0; e < sizeof events / sizeof events[0]; e++) {
        lua_pushvalue(L, stage + 2);
        lua_pushcclosure(L, events[e].f, 1);
        lua_setfield(L, -2, events[e].event);
    }
    lua_setmetatable(L, stage + 1);
    lua_pushvalue(L, stage + 1);
    lua_setfield(L, stage, "builtin");
    lua_pushvalue(L, stage + 2);
    lua_pushcclosure(L, builtin_actor, 1);
    lua_setfield(L, stage, "actor");
    lua_settop(L, stage - 1);
}
