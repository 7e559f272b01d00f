/* lua_host: what every binding shares: the host record of a state, and the one way Lua is
 * called (with a traceback handler and the governor's budget, errors logged as one record). */
#include "lua_host.h"
#include "lua_chunks.h"
#include "lua_guard.h"
#include "sn_clock.h"
#include "sn_error.h"
#include "sn_node.h"

#include <dirent.h>
#include <lauxlib.h>
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

enum { HOOK_EVERY = 100000 }; /* instructions between budget checks */

static void budget_hook(lua_State *L, lua_Debug *ar);

/* Past the budget, the entry fails, and stays failing (the hook then runs every
 * instruction), so a pcall in the script cannot swallow it and loop on. */
void sn_lua_budget_check(lua_State *L)
{
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

/* The count hook. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sn_lua_host *host = sn_lua_host_of(L);
    if (host->broker_hold && host->broker_send)
        host->broker_send(L);
    sn_lua_budget_check(L);
}

void sn_lua_govern(lua_State *L)
{
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
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
        sn_stats_count(sn_node_stats(host->node), SN_COUNT_ERROR, stage, kind);
        if (host->last_kill)
            sn_stats_count(sn_node_stats(host->node), SN_COUNT_KILL, stage,
                           host->last_kill == 1 ? "budget" : "memory");
    }
    return SN_ELUA;
}

static const char K_MAIN_HOOK = 0; /* what a main script's returned value means */

void sn_lua_set_main_hook(lua_State *L, lua_CFunction hook)
{
    lua_pushcfunction(L, hook);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_MAIN_HOOK);
}

/* Runs the chunk at path. What a main script returns goes to the main hook, if any. */
static int run_chunk(lua_State *L, const char *path, int main)
{
    sn_lua_host *host = sn_lua_host_of(L);
    /* a script may name the file (stage.spawn); every actor runs the preload */
    int status = sn_lua_chunks_load(host->ctx ? host->ctx->chunks : NULL, L, path);
    if (status != LUA_OK) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return status == LUA_ERRFILE ? SN_ENOENT : SN_ELUA;
    }
    char what[512];
    snprintf(what, sizeof what, "top-level chunk of %s", path);
    if (!main)
        return sn_lua_pcall(L, 0, 0, what);
    int rc = sn_lua_pcall(L, 0, 1, what);
    if (rc != SN_OK)
        return rc;
    int value = lua_gettop(L);
    if (lua_isnil(L, value)) {
        lua_pop(L, 1);
        return SN_OK;
    }
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MAIN_HOOK) != LUA_TFUNCTION) {
        lua_pop(L, 2);
        return SN_OK;
    }
    lua_insert(L, value); /* hook, value */
    char act[600];
    snprintf(act, sizeof act, "the value %s returned", what);
    return sn_lua_pcall(L, 1, 0, act);
}

int sn_lua_run_file(lua_State *L, const char *path)
{
    return run_chunk(L, path, 1);
}

/* Preload entries: *.lua files and folders, not hidden. */
static int preload_filter(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' &&
           ((n > 4 && strcmp(e->d_name + n - 4, ".lua") == 0) || e->d_type == DT_DIR ||
            e->d_type == DT_UNKNOWN || e->d_type == DT_LNK);
}

enum { PRELOAD_DEPTH = 16 }; /* folders in folders, as deep as any real tree, not a loop */

/* Runs dir's *.lua files and, recursively, its folders, all in name order (STAGE's %preload
 * reads folders recursively too). */
static int run_preload_dir(lua_State *L, const char *dir, int depth)
{
    sn_lua_host *host = sn_lua_host_of(L);
    struct dirent **names;
    int n = scandir(dir, &names, preload_filter, alphasort);
    if (n < 0) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "cannot read preload folder '%s'", dir);
        return SN_ENOENT;
    }
    int rc = SN_OK;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        size_t len = strlen(names[i]->d_name);
        if (rc != SN_OK || stat(path, &st) != 0) {
            ; /* stopped, or vanished meanwhile */
        } else if (S_ISDIR(st.st_mode)) {
            if (depth >= PRELOAD_DEPTH) {
                sn_log_write(host->log, SN_LOG_ERROR, host->who, "preload folder '%s' is "
                             "nested deeper than %d folders", path, PRELOAD_DEPTH);
                rc = SN_EINVAL;
            } else {
                rc = run_preload_dir(L, path, depth + 1);
            }
        } else if (S_ISREG(st.st_mode) && len > 4 &&
                   strcmp(names[i]->d_name + len - 4, ".lua") == 0) {
            rc = run_chunk(L, path, 0);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int sn_lua_run_preload(lua_State *L, const char *dir, int must_exist)
{
    struct stat st;
    if (!must_exist && stat(dir, &st) != 0)
        return SN_OK;
    return run_preload_dir(L, dir, 0);
}

void sn_lua_clear_table(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, idx);
    }
}

void sn_lua_pack_handler(lua_State *L, int fn, int top)
{
    lua_createtable(L, top - fn + 1, 1);
    for (int i = fn; i <= top; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - fn + 1);
    }
    lua_pushinteger(L, top - fn);
    lua_setfield(L, -2, "n");
}

int sn_lua_rawnext(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}
