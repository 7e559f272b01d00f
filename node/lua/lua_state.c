/* lua_state: the one place a stage-node lua_State is made, and the one way Lua is called
 * (with a traceback handler, errors logged as one record). */
#include "lua_state.h"
#include "lua_sandbox.h"
#include "lua_shared.h"
#include "lua_stage.h"
#include "lua_thread.h"
#include "sn_error.h"
#include "sn_node.h"

#include <dirent.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

sn_lua_host *sn_lua_host_of(lua_State *L)
{
    return *(sn_lua_host **)lua_getextraspace(L);
}

/* print(...): the whole line is built first and written with one fwrite, so lines from
 * different threads never interleave (glibc locks the stream per call). */
static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    fwrite(s, 1, len, stdout);
    return 0;
}

/* process.tick: seconds since the node started. */
static int process_index(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "tick") == 0) {
        lua_pushnumber(L, sn_clock_seconds(CLOCK_MONOTONIC) - sn_lua_host_of(L)->start);
        return 1;
    }
    return 0;
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
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, process_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "process");
}

static int setup(lua_State *L)
{
    sn_lua_host *host = lua_touserdata(L, 1);
    luaL_openlibs(L);
    lua_register(L, "print", l_print);
    open_process(L, host);
    sn_thread_open(L);
    sn_stage_open(L);
    sn_shared_open(L);
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
    size_t used = atomic_load_explicit(&host->mem_used, memory_order_relaxed);
    if (nsize == 0) {
        free(ptr);
        atomic_store_explicit(&host->mem_used, used - old, memory_order_relaxed);
        return NULL;
    }
    if (nsize > old && host->mem_cap && used + (nsize - old) > host->mem_cap)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    used = used - old + nsize;
    atomic_store_explicit(&host->mem_used, used, memory_order_relaxed);
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
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

enum { HOOK_EVERY = 100000 }; /* instructions between budget checks */

/* The count hook: past the budget, the entry fails, and stays failing (the hook then runs
 * every instruction), so a pcall in the script cannot swallow it and loop on. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->over_budget) {
        if (host->budget <= 0)
            return;
        double now = sn_clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        if (host->entry_cpu < 0) /* the entry's first check: its clock starts here */
            host->entry_cpu = now;
        if (now - host->entry_cpu <= host->budget)
            return;
        host->over_budget = 1;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    }
    char msg[300];
    snprintf(msg, sizeof msg, "budget exceeded in %s of actor %s (%g s of CPU)",
             host->activity, host->who, host->budget);
    luaL_error(L, "%s", msg);
}

lua_State *sn_lua_new(sn_lua_host *host)
{
    /* With no memory limit and no budget the governor is off: a plain allocator, no hook
     * (this is how make bench measures what the governor costs). */
    int counting = host->mem_cap || host->mem_warn;
    lua_State *L = lua_newstate(counting ? l_alloc : plain_alloc, host);
    if (!L) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "cannot create a Lua state: %s",
                     sn_strerror(SN_ENOMEM));
        return NULL;
    }
    *(sn_lua_host **)lua_getextraspace(L) = host;
    lua_atpanic(L, panic);
    if (host->budget > 0)
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY); /* coroutines inherit it */
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, host);
    if (sn_lua_pcall(L, 1, 0, "state setup") != SN_OK) {
        lua_close(L);
        return NULL;
    }
    return L;
}

/* Message handler: turns any error object into "message\ntraceback". */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int sn_lua_pcall(lua_State *L, int nargs, int nresults, const char *activity)
{
    sn_lua_host *host = sn_lua_host_of(L);
    size_t alen = strnlen(activity, sizeof host->activity - 1);
    memcpy(host->activity, activity, alen);
    host->activity[alen] = '\0';
    /* The CPU clock is a system call; reading it at the first hook check instead (after
     * 100k instructions, about a millisecond) keeps it off the path of short handlers. */
    host->entry_cpu = -1;
    host->over_budget = 0;
    host->last_kill = 0;
    if (host->budget > 0 && !lua_gethook(L)) /* e.g. a job of a stage with a budget */
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (host->over_budget) { /* back to a check every HOOK_EVERY instructions */
        host->last_kill = 1;
        host->over_budget = 0;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
    }
    if (status == LUA_OK)
        return SN_OK;
    const char *msg = lua_tostring(L, -1);
    if (status == LUA_ERRMEM) {
        msg = "not enough memory";
        if (host->mem_cap && !host->last_kill)
            host->last_kill = 2;
    }
    sn_log_write(host->log, SN_LOG_ERROR, host->who, "error in %s: %s", activity,
                 msg ? msg : "?");
    lua_pop(L, 1);
    if (host->node) { /* counted by kind: the activity's first word */
        const char *kind = strncmp(activity, "handler", 7) == 0  ? "handler"
                           : strncmp(activity, "timer", 5) == 0  ? "timer"
                           : strncmp(activity, "job", 3) == 0    ? "job"
                           : strncmp(activity, "thread", 6) == 0 ? "thread"
                                                                 : "chunk";
        const char *stage = host->stage && host->stage[0] ? host->stage : "worker";
        sn_node_count(host->node, SN_COUNT_ERROR, stage, kind);
        if (host->last_kill)
            sn_node_count(host->node, SN_COUNT_KILL, stage,
                          host->last_kill == 1 ? "budget" : "memory");
    }
    return SN_ELUA;
}

int sn_lua_run_file(lua_State *L, const char *path)
{
    int status = luaL_loadfile(L, path);
    if (status != LUA_OK) {
        sn_lua_host *host = sn_lua_host_of(L);
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return status == LUA_ERRFILE ? SN_ENOENT : SN_ELUA;
    }
    char what[512];
    snprintf(what, sizeof what, "top-level chunk of %s", path);
    return sn_lua_pcall(L, 0, 0, what);
}

static int lua_file_filter(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 4 && strcmp(e->d_name + n - 4, ".lua") == 0;
}

int sn_lua_run_preload(lua_State *L, const char *dir, int must_exist)
{
    struct dirent **names;
    int n = scandir(dir, &names, lua_file_filter, alphasort);
    if (n < 0) {
        if (!must_exist)
            return SN_OK;
        sn_lua_host *host = sn_lua_host_of(L);
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "cannot read preload folder '%s'", dir);
        return SN_ENOENT;
    }
    int rc = SN_OK;
    for (int i = 0; i < n; i++) {
        if (rc == SN_OK) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            rc = sn_lua_run_file(L, path);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}
