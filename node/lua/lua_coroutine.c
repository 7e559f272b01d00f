/* lua_coroutine: a coroutine's env is made at its first resume: its creator's env is frozen
 * and the new env reads through that snapshot (lua_env). A coroutine body f keeps its own
 * closure: on each resume f's _ENV upvalue is joined to the coroutine's env cell, and
 * restored when the resume returns, so f called outside the coroutine still sees its
 * lexical environment.
 *
 * A coroutine's "holder" is a closure whose upvalues are (1) its env, nil until the first
 * resume, (2) its body f and (3) the creator's env until then. */
#include "lua_coroutine.h"
#include "lua_chunks.h"
#include "lua_env.h"

#include <lauxlib.h>
#include <string.h>

/* Registry keys: the addresses of these constants are unique light userdata. */
static const char K_STATE = 0;   /* the resume depth (userdata) */
static const char K_COINFO = 0;  /* weak map coroutine -> holder closure */
static const char K_SAVERS = 0;  /* saver closures, by resume depth */
static const char K_FACTORY = 0; /* Lua function that makes holder closures */

typedef struct co_state {
    int depth; /* nesting of sandboxed resumes, indexes the savers */
} co_state;

/* coroutine.create, resume, wrap and the wrapped functions hold the registry values they
 * use as upvalues, so that a create or a resume makes no registry lookup. */
enum { UP_COINFO = 1, UP_FACTORY, UP_SAVERS, UP_STATE, UP_COUNT = UP_STATE };

/* Pushes the upvalues shared by the coroutine functions, in UP_* order. */
static void push_upvalues(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_FACTORY);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_SAVERS);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_STATE);
}

/* Where those upvalues are: at `first` onwards (1 for create, resume, wrap; 2 for a wrapped
 * function, whose upvalue 1 is its coroutine). */
static int up(int first, int which)
{
    return lua_upvalueindex(first + which - 1);
}

/* Pushes the env of the code running on L; coinfo: index of the K_COINFO table. */
static void push_running_env(lua_State *L, int coinfo)
{
    lua_pushvalue(L, coinfo);
    lua_pushthread(L);
    if (lua_rawget(L, -2) == LUA_TFUNCTION) { /* our coroutine: its env, once started */
        lua_getupvalue(L, -1, 1);
        if (!lua_isnil(L, -1)) {
            lua_replace(L, -3);
            lua_pop(L, 1);
            return;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    sn_env_push_base(L);
}

void sn_coroutine_push_running_env(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    push_running_env(L, lua_gettop(L));
    lua_remove(L, -2);
}

/* The index of f's _ENV upvalue, or 0. */
static int env_upvalue(lua_State *L, int f)
{
    if (lua_iscfunction(L, f))
        return 0;
    const char *name;
    for (int i = 1; (name = lua_getupvalue(L, f, i)) != NULL; i++) {
        lua_pop(L, 1);
        if (strcmp(name, "_ENV") == 0)
            return i;
    }
    return 0;
}

/* The index of f's _ENV upvalue when it holds sandboxed globals (an env), or 0: a body
 * given its own environment (load's env argument, a local _ENV) keeps it, as in standard
 * Lua; code meant to run restricted must not be handed the globals. */
static int sandboxed_env_upvalue(lua_State *L, int f)
{
    int i = env_upvalue(L, f);
    if (i == 0)
        return 0;
    lua_getupvalue(L, f, i);
    int is = sn_env_is_env(L, -1);
    lua_pop(L, 1);
    return is ? i : 0;
}

/* Creates a coroutine for the function at index 1 and registers its holder. Pushes it.
 * The coroutine functions' upvalues start at first. */
static lua_State *new_coroutine(lua_State *L, int first)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L); /* 2 */
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    if (sandboxed_env_upvalue(L, 1)) {
        lua_pushvalue(L, 2);
        lua_pushvalue(L, up(first, UP_FACTORY));
        lua_pushnil(L); /* the env, made at first resume */
        lua_pushvalue(L, 1);
        push_running_env(L, up(first, UP_COINFO));
        lua_call(L, 3, 1);
        lua_rawset(L, up(first, UP_COINFO));
    }
    return co;
}

/* Resumes co with narg arguments from L's top, like lcorolib's auxresume: returns the number
 * of results moved to L, or -1 with the error message on L's top. */
static int plain_resume(lua_State *L, lua_State *co, int narg)
{
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
        lua_pushliteral(L, "cannot resume dead coroutine");
        return -1;
    }
    lua_xmove(L, co, narg);
    int status = lua_resume(co, L, narg);
    if (status == LUA_OK || status == LUA_YIELD) {
        int nres = lua_gettop(co);
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

/* Resumes co (any coroutine); sandboxed ones run with their env joined into their body. */
static int sandboxed_resume(lua_State *L, lua_State *co, int narg, int first)
{
    int base = lua_gettop(L) - narg; /* args are above base */
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (lua_rawget(L, up(first, UP_COINFO)) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return plain_resume(L, co, narg);
    }
    int holder = lua_gettop(L);
    lua_getupvalue(L, holder, 2); /* f */
    int f = holder + 1;
    int envidx = env_upvalue(L, f);
    if (envidx == 0) { /* cannot happen: the holder was made for an _ENV upvalue */
        lua_pop(L, 2);
        return plain_resume(L, co, narg);
    }
    if (lua_getupvalue(L, holder, 1) == NULL || lua_isnil(L, -1)) {
        /* first resume: snapshot the creator */
        lua_pop(L, 1);
        if (lua_status(co) == LUA_OK && lua_gettop(co) > 0) {
            lua_getupvalue(L, holder, 3); /* creator env */
            sn_env_freeze(L, -1);
            lua_createtable(L, 0, 4);
            sn_env_push_child_mt(L, -2);
            lua_setmetatable(L, -2);
            lua_setupvalue(L, holder, 1);
            lua_pushnil(L); /* the shared metatable keeps the creator */
            lua_setupvalue(L, holder, 3);
            lua_pop(L, 1);
        }
    } else {
        lua_pop(L, 1);
    }
    co_state *cs = lua_touserdata(L, up(first, UP_STATE));
    if (lua_rawgeti(L, up(first, UP_SAVERS), cs->depth + 1) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        lua_pushvalue(L, up(first, UP_FACTORY));
        lua_call(L, 0, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, up(first, UP_SAVERS), cs->depth + 1);
    }
    int saver = lua_gettop(L);
    lua_upvaluejoin(L, saver, 1, f, envidx);  /* remember f's own cell */
    lua_upvaluejoin(L, f, envidx, holder, 1); /* f sees the coroutine's env */
    lua_rotate(L, base + 1, 3);               /* holder, f, saver below the args */
    cs->depth++;
    int n = plain_resume(L, co, narg);
    cs->depth--;
    lua_upvaluejoin(L, base + 2, envidx, base + 3, 1); /* restore f */
    lua_rotate(L, base + 1, -3);
    lua_pop(L, 3);
    return n;
}

/* coroutine.create(f) */
static int co_create(lua_State *L)
{
    new_coroutine(L, 1);
    return 1;
}

/* coroutine.resume(co, ...) */
static int co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co, 1, "coroutine expected");
    int n = sandboxed_resume(L, co, lua_gettop(L) - 1, 1);
    if (n < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(n + 1));
    return n + 1;
}

static int co_wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int n = sandboxed_resume(L, co, lua_gettop(L), 2);
    if (n < 0) {
        if (lua_type(L, -1) == LUA_TSTRING) { /* add position, as Lua's wrap does */
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return n;
}

/* coroutine.wrap(f) */
static int co_wrap(lua_State *L)
{
    new_coroutine(L, 1);
    for (int i = 1; i <= UP_COUNT; i++)
        lua_pushvalue(L, lua_upvalueindex(i));
    lua_pushcclosure(L, co_wrapped, 1 + UP_COUNT);
    return 1;
}

void sn_coroutine_forget(lua_State *L, const char *name)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_getupvalue(L, -1, 1);
        if (lua_istable(L, -1)) {
            lua_pushstring(L, name);
            lua_pushnil(L);
            lua_rawset(L, -3);
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

/* ---- installation ----------------------------------------------------------------------- */

static const char factory_src[] =
    "local e, f, c = ... return function() return e, f, c end";

void sn_coroutine_open(lua_State *L)
{
    co_state *cs = lua_newuserdata(L, sizeof *cs);
    cs->depth = 0;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_STATE);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SAVERS);
    lua_newtable(L); /* weak-keyed: a coroutine's entry dies with it */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    if (sn_lua_chunks_loadbuffer(L, factory_src, sizeof factory_src - 1, "=sandbox") != LUA_OK)
        lua_error(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_FACTORY);

    lua_getglobal(L, "coroutine");
    static const struct {
        const char *name;
        lua_CFunction f;
    } fns[] = {{"create", co_create}, {"resume", co_resume}, {"wrap", co_wrap}};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        push_upvalues(L);
        lua_pushcclosure(L, fns[i].f, UP_COUNT);
        lua_setfield(L, -2, fns[i].name);
    }
    lua_pop(L, 1);
}
