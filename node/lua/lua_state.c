/* lua_state: the one place a stage-node lua_State is made: standard libraries, print, the
 * process/thread/stage tables, the sandbox, the governor's allocator and hook. */
#include "lua_state.h"
#include "lua_builtin.h"
#include "lua_bundle.h"
#include "lua_config.h"
#include "lua_curl.h"
#include "lua_guard.h"
#include "lua_logger.h"
#include "lua_odbc.h"
#include "lua_pattern.h"
#include "lua_rank.h"
#include "lua_sandbox.h"
#include "lua_shared.h"
#include "lua_broker.h"
#include "lua_stage.h"
#include "lua_thread.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_opts.h"
#include "sn_small.h"

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* print(...): the whole line is built first and written with one fwrite, so lines from
 * different threads never interleave (glibc locks the stream per call). Each value goes
 * through the global tostring, as Lua 5.3's print does. */
static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    sn_sandbox_push_running(L);
    lua_getfield(L, -1, "tostring");
    lua_replace(L, -2);
    int tostr = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        lua_pushvalue(L, tostr);
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "'tostring' must return a string to 'print'");
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    fwrite(s, 1, len, stdout);
    return 0;
}

/* STAGE's utimeNow()/1000.0: wall-clock seconds since the epoch, to the millisecond. */
static double epoch_seconds(void)
{
    return floor(sn_clock_seconds(CLOCK_REALTIME) * 1000.0) / 1000.0;
}

/* process.tick (epoch seconds), process.stage (the actor's id), process.title (the process
 * name ps shows), process["%NAME"] (the environment), process["$KEY"] / process["$"] (the
 * stage's settings from a stage.json, with %package and %preload as the node runs them). */
static int process_index(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const char *k = lua_tostring(L, 2);
    if (!k)
        return 0;
    if (strcmp(k, "tick") == 0) {
        lua_pushnumber(L, epoch_seconds());
    } else if (strcmp(k, "clock") == 0) { /* a stage-node addition: for timing */
        lua_pushnumber(L, sn_clock_mono());
    } else if (strcmp(k, "stage") == 0) {
        lua_pushinteger(L, (lua_Integer)host->actor);
    } else if (strcmp(k, "title") == 0) {
        char title[64] = "";
        FILE *f = fopen("/proc/self/comm", "r");
        if (f && fgets(title, sizeof title, f))
            title[strcspn(title, "\n")] = '\0';
        if (f)
            fclose(f);
        lua_pushstring(L, title);
    } else if (k[0] == '%') {
        const char *v = getenv(k + 1);
        if (!v)
            return 0;
        lua_pushstring(L, v);
    } else if (k[0] == '$') {
        if (k[1] && sn_lua_builtin_setting(L, k + 1) && !lua_isnil(L, -1))
            return 1; /* a --set limit of the built-in stages (docs/stages.md) */
        if (k[1])
            lua_pop(L, 1);
        const sn_opts *o = host->node ? sn_node_opts(host->node) : NULL;
        sn_config_push_stage(L, o ? o->config : NULL, host->stage ? host->stage : "");
        if (o && lua_getfield(L, -1, "%preload") == LUA_TNIL) {
            lua_pushstring(L, o->preload);
            lua_setfield(L, -3, "%preload");
        }
        lua_pop(L, 1);
        if (host->node && lua_getfield(L, -1, "%package") == LUA_TNIL) {
            lua_newtable(L);
            for (int i = 0; sn_node_package(host->node, i); i++) {
                lua_pushstring(L, sn_node_package(host->node, i));
                lua_rawseti(L, -2, i + 1);
            }
            lua_setfield(L, -3, "%package");
        }
        lua_pop(L, 1);
        if (k[1])
            lua_getfield(L, -1, k + 1);
    } else {
        return 0;
    }
    return 1;
}

/* process.title = s renames the process as ps shows it (Linux keeps 15 bytes), as STAGE's
 * setproctitle. "%NAME" and "$KEY" are read-only here; other writes are dropped, as STAGE's. */
static int process_newindex(lua_State *L)
{
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "title") == 0) {
        const char *t = luaL_checkstring(L, 3);
        FILE *f = fopen("/proc/self/comm", "w");
        int ok = f && fprintf(f, "%.15s", t) >= 0;
        if (f && fclose(f) != 0)
            ok = 0;
        if (!ok)
            return luaL_error(L, "process.title: cannot rename the process");
        return 0;
    }
    if (k[0] == '%' || k[0] == '$')
        return luaL_error(L, "process[\"%s\"]: read-only in stage-node (see \"Differences from "
                          "STAGE\" in docs/lua-api.md)", k);
    return 0; /* STAGE drops other writes too */
}

static void open_process(lua_State *L, sn_lua_host *host)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)getpid());
    lua_setfield(L, -2, "id");
    lua_pushstring(L, host->node_name ? host->node_name : "");
    lua_setfield(L, -2, "name");
    lua_createtable(L, host->nargs, 1);
    if (host->script) {
        lua_pushstring(L, host->script);
        lua_rawseti(L, -2, 0);
    }
    for (int i = 0; i < host->nargs; i++) {
        lua_pushstring(L, host->args[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "args");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, process_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, process_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "process");
}

/* ---- libraries opened at their first use ------------------------------------------------
 * Most actors never touch these libraries, and each costs a new state its closures and, for
 * broker, a compiled Lua helper (issue 17: spawn time and memory per actor). The global is a
 * table from the start (the same table all along: pairs(_G), require and a local copy see
 * it); its metatable opens the library at the first read, write or pairs, into that table,
 * and goes. Until then rawget, next and getmetatable see an empty table (docs/lua-api.md). */
typedef struct lazy_lib {
    const char *name;
    void (*open)(lua_State *L); /* sets the global name; left unedited */
    const char *dep, *dep_field; /* the global field open reads (captured at start), or NULL */
    int required; /* 1: open puts name in package.preload (require(name)); 2: a standard
                     library, package.loaded[name] is the global's table from the start */
} lazy_lib;

/* math and utf8 as luaL_openlibs would open them, but into the global only (package.loaded
 * holds the stub from the start, so require("math") is the global's table all along). */
static void open_std(lua_State *L, lua_CFunction open, const char *name)
{
    lua_pushcfunction(L, open);
    lua_call(L, 0, 1);
    lua_setglobal(L, name);
}

static void open_math(lua_State *L)
{
    open_std(L, luaopen_math, LUA_MATHLIBNAME);
}

static void open_utf8(lua_State *L)
{
    open_std(L, luaopen_utf8, LUA_UTF8LIBNAME);
}

enum { NLAZY_STD = 2 }; /* the first entries: made at start, before the other libraries */
static const lazy_lib LAZY[] = {
    {LUA_MATHLIBNAME, open_math, NULL, NULL, 2},
    {LUA_UTF8LIBNAME, open_utf8, NULL, NULL, 2},
    {"broker", sn_lua_broker_open, "stage", "submit", 1},
    {"logger", sn_logger_open, NULL, NULL, 1},
    {"bundle", sn_bundle_open, NULL, NULL, 1},
};
enum { NLAZY = sizeof LAZY / sizeof LAZY[0] };

static const char K_LAZY = 0;  /* marks a stub's metatable (a raw field of it) */
static const char K_STUBS = 0; /* registry: name -> the global's table, opened or not */

static int lazy_call_open(lua_State *L)
{
    LAZY[lua_tointeger(L, lua_upvalueindex(1))].open(L);
    return 0;
}

static int lazy_loader(lua_State *L);

/* Opens the library of the stub at t, if not yet. The stubs share one metatable; what is
 * each one's is in the registry's K_STUBS: [t] its index in LAZY, [index] the captured
 * dependency. open runs with a globals table of its own, reading through to the state's:
 * what it sets goes there (so no env of a script sees a write), and Lua it loads finds the
 * global name as the stub. */
static void lazy_define(lua_State *L, int t)
{
    t = lua_absindex(L, t);
    if (!lua_getmetatable(L, t))
        return;
    int stub = lua_rawgetp(L, -1, &K_LAZY) != LUA_TNIL;
    lua_pop(L, 2);
    if (!stub)
        return;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_STUBS);
    lua_pushvalue(L, t);
    lua_rawget(L, -2);
    lua_Integer i = lua_tointeger(L, -1);
    int idx_i = lua_gettop(L), idx_dep = idx_i + 1;
    lua_rawgeti(L, -2, i);
    const lazy_lib *lib = &LAZY[i];
    int top = lua_gettop(L);
    lua_newtable(L); /* top+1: the globals open sees */
    lua_createtable(L, 0, 1);
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, top + 1);
    if (lib->dep) {
        lua_createtable(L, 0, 1);
        lua_pushvalue(L, idx_dep);
        lua_setfield(L, -2, lib->dep_field);
        lua_setfield(L, top + 1, lib->dep);
    }
    lua_pushglobaltable(L); /* top+2: the state's */
    lua_pushvalue(L, top + 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushvalue(L, idx_i);
    lua_pushcclosure(L, lazy_call_open, 1);
    int status = lua_pcall(L, 0, 0, 0);
    lua_pushvalue(L, top + 2);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    if (status != LUA_OK)
        lua_error(L); /* out of memory: the stub stays, a later use tries again */
    lua_getfield(L, top + 1, lib->name); /* top+3: the library open made */
    lua_pushnil(L);
    while (lua_next(L, top + 3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, t);
    }
    if (!lua_getmetatable(L, top + 3))
        lua_pushnil(L);
    lua_setmetatable(L, t);
    lua_pushvalue(L, t);
    lua_setfield(L, top + 1, lib->name); /* for the Lua open loaded, as its globals */
    if (lib->required == 1) { /* require(name) is the global's table, as before */
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
        lua_pushvalue(L, t);
        lua_pushcclosure(L, lazy_loader, 1);
        lua_setfield(L, -2, lib->name);
    }
    lua_settop(L, idx_i - 2);
}

static int lazy_index(lua_State *L) /* __index(t, k) */
{
    lazy_define(L, 1);
    lua_settop(L, 2);
    lua_gettable(L, 1);
    return 1;
}

static int lazy_newindex(lua_State *L) /* __newindex(t, k, v) */
{
    lazy_define(L, 1);
    lua_settop(L, 3);
    lua_settable(L, 1);
    return 0;
}

static int lazy_pairs(lua_State *L) /* __pairs(t): as pairs on the opened table */
{
    lazy_define(L, 1);
    if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 3);
        return 3;
    }
    lua_pushcfunction(L, sn_lua_rawnext);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* package.preload's loader: opens the library and returns the global's table (upvalue 1). */
static int lazy_loader(lua_State *L)
{
    lazy_define(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(1));
    return 1;
}

/* The stubs' one metatable (at the top on return). */
static void lazy_meta(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &K_LAZY);
    lua_pushcfunction(L, lazy_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lazy_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, lazy_pairs);
    lua_setfield(L, -2, "__pairs");
}

/* The global of LAZY[i] as a stub with metatable meta (an index); stubs at K_STUBS. */
static void lazy_stub(lua_State *L, int i, int meta, int stubs)
{
    const lazy_lib *lib = &LAZY[i];
    lua_newtable(L); /* the global's table, for good */
    int t = lua_gettop(L);
    if (lib->dep) { /* what open would have read now: a script may replace it before */
        lua_getglobal(L, lib->dep);
        lua_getfield(L, -1, lib->dep_field);
        lua_rawseti(L, stubs, i);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, meta);
    lua_setmetatable(L, t);
    if (lib->required == 1) {
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
        lua_pushvalue(L, t);
        lua_pushcclosure(L, lazy_loader, 1);
        lua_setfield(L, -2, lib->name);
        lua_pop(L, 1);
    } else if (lib->required == 2) {
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_pushvalue(L, t);
        lua_setfield(L, -2, lib->name);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, t);
    lua_pushinteger(L, i);
    lua_rawset(L, stubs);
    lua_pushvalue(L, t);
    lua_setfield(L, stubs, lib->name);
    lua_setglobal(L, lib->name);
}

void sn_lua_lazy_open(lua_State *L, const char *name)
{
    int top = lua_gettop(L);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_STUBS) != LUA_TTABLE) { /* no state of ours */
        lua_settop(L, top);
        return;
    }
    for (int i = 0; i < NLAZY; i++) {
        if (name && strcmp(name, LAZY[i].name) != 0)
            continue;
        lua_getfield(L, top + 1, LAZY[i].name); /* top+2: the global's table */
        if (lua_getmetatable(L, top + 2) && lua_rawgetp(L, top + 3, &K_LAZY) != LUA_TNIL) {
            lua_getfield(L, top + 3, "__index"); /* a stub's: opens it */
            lua_pushvalue(L, top + 2);
            lua_pushnil(L);
            lua_call(L, 2, 0);
        }
        lua_settop(L, top + 1);
    }
    lua_settop(L, top);
}

/* Makes the stubs LAZY[from..to-1]; the first call makes the registry's K_STUBS and the
 * stubs' shared metatable (K_META). */
static const char K_META = 0;
static void lazy_stubs(lua_State *L, int from, int to)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_STUBS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, NLAZY, 2 * NLAZY);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &K_STUBS);
        lazy_meta(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &K_META);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_META);
    for (int i = from; i < to; i++)
        lazy_stub(L, i, lua_gettop(L), lua_gettop(L) - 1);
    lua_pop(L, 2);
}

/* luaL_openlibs without math and utf8, which open at their first use (stubs). */
static void open_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {"_G", luaopen_base},           {LUA_LOADLIBNAME, luaopen_package},
        {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
        {LUA_IOLIBNAME, luaopen_io},    {LUA_OSLIBNAME, luaopen_os},
        {LUA_STRLIBNAME, luaopen_string}, {LUA_DBLIBNAME, luaopen_debug},
    };
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    lazy_stubs(L, 0, NLAZY_STD); /* math, utf8 */
}

static int setup(lua_State *L)
{
    sn_lua_host *host = lua_touserdata(L, 1);
    open_libs(L);
    sn_lua_guard_open(L);
    sn_pattern_open(L);
    lua_register(L, "print", l_print);
    open_process(L, host);
    sn_thread_open(L);
    sn_stage_open(L);
    sn_lua_builtin_open(L); /* stage.builtin, stage.actor: armed by preload/stages.lua */
    sn_lua_rank_open(L); /* stage.rank: the index stage's board */
    sn_lua_curl_open(L); /* require("curl") */
    sn_lua_odbc_open(L); /* the global odbc */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* require("stage"), ("odbc"): */
    for (int i = 0; i < 2; i++) { /* STAGE's stage/lua.cpp puts them in package.loaded */
        const char *name = i ? "odbc" : "stage";
        lua_getglobal(L, name);
        lua_setfield(L, -2, name);
    }
    lua_pop(L, 1);
    sn_lua_shared_open(L);
    lazy_stubs(L, NLAZY_STD, NLAZY); /* broker, logger, bundle */
    sn_sandbox_open(L); /* last: it freezes nothing, but wraps what is there */
    return 0;
}

static int panic(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const char *msg = lua_tostring(L, -1);
    sn_log_write(host->log, SN_LOG_ERROR, host->who, "unprotected Lua error (a bug): %s",
                 msg ? msg : "?");
    return 0; /* Lua aborts after this; every entry into Lua is protected, so it is a bug */
}

/* The counting allocator: every byte a state holds is counted against its cap; an
 * allocation past the cap fails, and Lua turns that into a memory error in the code that
 * asked, leaving the state usable. */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sn_lua_host *host = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize tells the type, not a size */
    size_t used = atomic_load_explicit(host->mem_used, memory_order_relaxed);
    if (nsize == 0) {
        sn_small_free(ptr, old);
        atomic_store_explicit(host->mem_used, used - old, memory_order_relaxed);
        return NULL;
    }
    if (nsize > old && host->mem_cap && used + (nsize - old) > host->mem_cap)
        return NULL;
    void *p = sn_small_realloc(ptr, old, nsize);
    if (!p)
        return NULL;
    used = used - old + nsize;
    atomic_store_explicit(host->mem_used, used, memory_order_relaxed);
    if (host->mem_warn && used > host->mem_warn && !host->mem_warned) {
        host->mem_warned = 1;
        sn_log_write(host->log, SN_LOG_WARN, host->who, "Lua memory above %zu MiB (cap %zu MiB)",
                     host->mem_warn >> 20, host->mem_cap >> 20);
    } else if (host->mem_warned && used < host->mem_warn / 2) {
        host->mem_warned = 0;
    }
    return p;
}

static void *plain_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize tells the type, not a size */
    if (nsize == 0) {
        sn_small_free(ptr, old);
        return NULL;
    }
    return sn_small_realloc(ptr, old, nsize);
}

lua_State *sn_lua_new(sn_lua_host *host)
{
    /* With no memory limit and no budget the governor is off: a plain allocator, no hook
     * (this is how make bench measures what the governor costs). */
    int counting = host->mem_cap || host->mem_warn;
    if (!host->mem_used)
        host->mem_used = &host->mem_own;
    lua_State *L = lua_newstate(counting ? l_alloc : plain_alloc, host);
    if (!L) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "cannot create a Lua state: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    *(sn_lua_host **)lua_getextraspace(L) = host;
    lua_atpanic(L, panic);
    if (host->budget > 0)
        sn_lua_govern(L); /* coroutines inherit the hook */
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, host);
    if (sn_lua_pcall(L, 1, 0, "state setup") != SN_OK) {
        lua_close(L);
        return NULL;
    }
    return L;
}
