/* lua_guard: the standard functions a script could use against the node or another actor,
 * replaced by ones that refuse with a message saying what to do instead. Each refusal is
 * one of the isolation rules of docs/governor.md. */
#include "lua_guard.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <string.h>

#define BINARY_CHUNK "attempt to load a binary chunk"
#define HOOK_REFUSED "hooks are kept for the governor (docs/governor.md)"
#define GC_REFUSED SN_GUARD_GC

/* os.exit would end the process with whatever status one actor picked, in the middle of
 * every other actor's work. */
static int guard_os_exit(lua_State *L)
{
    return luaL_error(L, "os.exit would stop the whole node: use stage.exit() "
                         "(docs/lua-api.md)");
}

/* After a failed load in text mode: the message at the top says why; a binary chunk gets
 * ours. */
static void reword_binary(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    if (msg && strstr(msg, BINARY_CHUNK)) {
        lua_pop(L, 1);
        lua_pushstring(L, SN_GUARD_BINARY);
    }
}

int sn_lua_guard_loadfile(lua_State *L, const char *path)
{
    int status = luaL_loadfilex(L, path, "t");
    if (status != LUA_OK)
        reword_binary(L);
    return status;
}

/* A chunk loaded without an env of its own gets the globals of the code that loads it (the
 * running coroutine's, or the job's on a worker), not the state's global table: on a
 * worker that table is every actor's, and a coroutine's globals are its snapshot. */
static const char K_ENVSOURCE = 0; /* registry: the function pushing the running globals */

void sn_lua_guard_env_source(lua_State *L, lua_CFunction push_env)
{
    lua_pushcfunction(L, push_env);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_ENVSOURCE);
}

static void bind_running_env(lua_State *L, int f)
{
    f = lua_absindex(L, f);
    if (lua_type(L, f) != LUA_TFUNCTION || lua_iscfunction(L, f) || !lua_getupvalue(L, f, 1))
        return;
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ENVSOURCE) != LUA_TFUNCTION) {
        lua_pop(L, 1); /* no sandbox: the state's global table, as lua_load gave */
        return;
    }
    lua_call(L, 0, 1);
    lua_setupvalue(L, f, 1);
}

/* Calls the original (upvalue 1) with the mode at index mode forced to "t"; a mode without
 * 't' asked for bytecode only, which is refused outright. The env argument follows mode. */
static int call_text_only(lua_State *L, int mode)
{
    const char *m = luaL_optstring(L, mode, "bt");
    if (!strchr(m, 't')) {
        lua_pushnil(L);
        lua_pushstring(L, SN_GUARD_BINARY);
        return 2;
    }
    int own_env = lua_gettop(L) > mode; /* given, even as nil */
    if (lua_gettop(L) < mode)
        lua_settop(L, mode);
    lua_pushliteral(L, "t");
    lua_replace(L, mode);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (lua_gettop(L) == 2 && lua_isnil(L, 1))
        reword_binary(L);
    else if (!own_env)
        bind_running_env(L, 1);
    return lua_gettop(L);
}

/* load(chunk [, chunkname [, mode [, env]]]) */
static int guard_load(lua_State *L)
{
    return call_text_only(L, 3);
}

/* loadfile([filename [, mode [, env]]]) */
static int guard_loadfile(lua_State *L)
{
    return call_text_only(L, 2);
}

static int dofile_cont(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L) - 1;
}

/* dofile([filename]) */
static int guard_dofile(lua_State *L)
{
    const char *path = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (sn_lua_guard_loadfile(L, path) != LUA_OK)
        return lua_error(L);
    bind_running_env(L, -1);
    lua_callk(L, 0, LUA_MULTRET, 0, dofile_cont);
    return dofile_cont(L, 0, 0);
}

/* package.searchers[2], the Lua searcher, in text mode; upvalue 1: the package table. */
static int guard_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, lua_upvalueindex(1), "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, lua_upvalueindex(1), "path");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "'package.path' must be a string");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) { /* not found: the searched names, as require expects */
        lua_pushliteral(L, "\n\t");
        lua_insert(L, -2);
        lua_concat(L, 2);
        return 1;
    }
    lua_pop(L, 1);
    const char *path = lua_tostring(L, -1);
    if (sn_lua_guard_loadfile(L, path) != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path,
                          lua_tostring(L, -1));
    bind_running_env(L, -1);
    lua_pushstring(L, path);
    return 2;
}

/* package.loadlib, and require's C searchers, would run native code from any file, one the
 * script wrote with io.open included: native code is beyond every rule of the governor. */
static int guard_loadlib(lua_State *L)
{
    return luaL_error(L, "package.loadlib: scripts may not load C libraries (a script could "
                         "load one it wrote; docs/governor.md)");
}

/* The governor's budget is a count hook: a script that could clear it (debug.sethook())
 * would run unbounded, and one that could see it (debug.gethook) would know what to clear.
 * Chaining a script's hook with the governor's would make the budget depend on the
 * script's hook returning, so scripts get no hooks. */
static int guard_sethook(lua_State *L)
{
    return luaL_error(L, "debug.sethook: " HOOK_REFUSED);
}

static int guard_gethook(lua_State *L)
{
    lua_pushnil(L); /* what standard Lua answers when no hook is set: nil, no mask, count 0 */
    lua_pushliteral(L, "");
    lua_pushinteger(L, 0);
    return 3;
}

/* Lua 5.3 runs finalizers with hooks off, so no budget can stop one; an object is marked
 * for finalization only when its metatable has __gc as it is set, so refusing such a
 * metatable here keeps every script object out of the finalizer list. Upvalue 1: the
 * original. */
static int guard_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int gc = lua_rawget(L, 2) != LUA_TNIL;
        lua_pop(L, 1);
        if (gc)
            return luaL_error(L, "setmetatable: " GC_REFUSED);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Registry key: weak set of the sealed Lua functions (sn_lua_guard_seal). */
static const char K_SEALED = 0;

void sn_lua_guard_seal(lua_State *L, int idx)
{
    sn_snapshot_weak_add(L, &K_SEALED, idx);
}

/* 1 if the value at idx is a C function or a sealed Lua function. */
static int upvalues_hidden(lua_State *L, int idx)
{
    if (lua_iscfunction(L, idx))
        return 1;
    return lua_type(L, idx) == LUA_TFUNCTION && sn_snapshot_weak_has(L, &K_SEALED, idx);
}

/* Calls upvalue 1 (the function this one wraps) with the arguments; returns its results. */
static int call_original(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* The upvalues of C functions are the guards' originals (the unguarded load,
 * setmetatable, string.find): debug.getupvalue and setupvalue see none, as for a C
 * function without upvalues; so do sealed Lua functions; other Lua functions are served as
 * usual. Upvalue 1: the original. */
static int guard_upvalue(lua_State *L)
{
    if (upvalues_hidden(L, 1))
        return 0;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* debug.upvalueid and upvaluejoin: refused on C functions (see guard_upvalue). */
static int guard_upvalue_ref(lua_State *L)
{
    luaL_argcheck(L, !upvalues_hidden(L, 1), 1, "a Lua function expected");
    if (lua_gettop(L) >= 3)
        luaL_argcheck(L, !upvalues_hidden(L, 3), 3, "a Lua function expected");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* The registry holds the node's own state (a worker's is shared by every actor's jobs):
 * the guards' originals, the saved library, timers, the sandbox. */
static int guard_getregistry(lua_State *L)
{
    return luaL_error(L, "debug.getregistry: the registry is the node's (docs/governor.md)");
}

/* debug.getmetatable honours a locked metatable (files: see lock_file_metatable). */
static int guard_getmetatable(lua_State *L)
{
    luaL_checkany(L, 1);
    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE && lua_rawequal(L, -1, -2)) {
        lua_pushliteral(L, LUA_FILEHANDLE);
        return 1;
    }
    lua_pop(L, 1);
    return 1;
}

/* debug.getinfo, getlocal and setlocal address a frame by level, and their originals would
 * count our own frame: the argument is shifted by one for the running thread. Returns the
 * index of the level argument, or 0 when the call names a function, not a level. */
static int shift_level(lua_State *L)
{
    int arg = lua_type(L, 1) == LUA_TTHREAD ? 2 : 1;
    if (lua_type(L, arg) != LUA_TNUMBER)
        return 0;
    if (arg == 1 || lua_tothread(L, 1) == L) {
        lua_pushinteger(L, luaL_checkinteger(L, arg) + 1);
        lua_replace(L, arg);
    }
    return arg;
}

/* 1 if the frame at the level argument (shifted by shift_level) runs a C function. */
static int c_frame(lua_State *L, int arg)
{
    lua_State *L1 = arg == 2 ? lua_tothread(L, 1) : L;
    lua_Debug ar;
    if (!lua_getstack(L1, (int)lua_tointeger(L, arg) - (L1 == L), &ar))
        return 0;
    lua_getinfo(L1, "S", &ar);
    return ar.what[0] == 'C';
}

/* The C functions below a script's frames are the node's own (the actor's entry, the
 * sandbox's metamethods): called with made-up arguments, or with their stack slots
 * changed, they would break the node. debug.getinfo gives no func of a C frame, and
 * debug.getlocal/setlocal see no locals in one. Upvalue 1: the original. */
static int guard_getinfo(lua_State *L)
{
    int arg = shift_level(L);
    int c = arg && c_frame(L, arg);
    int n = call_original(L);
    if (c && n == 1 && lua_istable(L, -1)) {
        lua_pushnil(L);
        lua_setfield(L, -2, "func");
    }
    return n;
}

static int guard_getlocal(lua_State *L)
{
    int arg = shift_level(L);
    if (arg && c_frame(L, arg)) {
        lua_pushnil(L);
        return 1;
    }
    return call_original(L);
}

static int guard_setlocal(lua_State *L)
{
    int arg = shift_level(L);
    if (arg && c_frame(L, arg)) {
        lua_pushnil(L);
        return 1;
    }
    return call_original(L);
}

/* Replaces t[name] (t at index t) by f, with the old value as f's upvalue. */
static void wrap(lua_State *L, int t, const char *name, lua_CFunction f)
{
    lua_getfield(L, t, name);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, t, name);
}

/* Files are marked for finalization by the io library, so a script that replaced the __gc
 * of their metatable would get a finalizer anyway: the metatable is hidden and its __gc
 * kept. */
static void lock_file_metatable(lua_State *L)
{
    if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE) {
        lua_pushliteral(L, LUA_FILEHANDLE);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

void sn_lua_guard_open(lua_State *L)
{
    int top = lua_gettop(L);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    wrap(L, g, "load", guard_load);
    wrap(L, g, "loadfile", guard_loadfile);
    lua_pushcfunction(L, guard_dofile);
    lua_setfield(L, g, "dofile");
    wrap(L, g, "setmetatable", guard_setmetatable);
    if (lua_getfield(L, g, "os") == LUA_TTABLE) {
        lua_pushcfunction(L, guard_os_exit);
        lua_setfield(L, -2, "exit");
    }
    if (lua_getfield(L, g, "debug") == LUA_TTABLE) {
        int d = lua_gettop(L);
        lua_pushcfunction(L, guard_sethook);
        lua_setfield(L, d, "sethook");
        lua_pushcfunction(L, guard_gethook);
        lua_setfield(L, d, "gethook");
        lua_getfield(L, d, "setmetatable");
        lua_pushcclosure(L, guard_setmetatable, 1);
        lua_setfield(L, d, "setmetatable");
        wrap(L, d, "getupvalue", guard_upvalue);
        wrap(L, d, "setupvalue", guard_upvalue);
        wrap(L, d, "upvalueid", guard_upvalue_ref);
        wrap(L, d, "upvaluejoin", guard_upvalue_ref);
        lua_pushcfunction(L, guard_getregistry);
        lua_setfield(L, d, "getregistry");
        wrap(L, d, "getinfo", guard_getinfo);
        wrap(L, d, "getlocal", guard_getlocal);
        wrap(L, d, "setlocal", guard_setlocal);
        lua_pushcfunction(L, guard_getmetatable);
        lua_setfield(L, d, "getmetatable");
    }
    if (lua_getfield(L, g, "package") == LUA_TTABLE &&
        lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
        lua_pushvalue(L, -2);
        lua_pushcclosure(L, guard_searcher, 1);
        lua_rawseti(L, -2, 2);
        lua_pushnil(L); /* the C and all-in-one searchers: native code */
        lua_rawseti(L, -2, 4);
        lua_pushnil(L);
        lua_rawseti(L, -2, 3);
        lua_pop(L, 1);
        lua_pushcfunction(L, guard_loadlib);
        lua_setfield(L, -2, "loadlib");
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "cpath");
    }
    lock_file_metatable(L);
    lua_settop(L, top);
}
