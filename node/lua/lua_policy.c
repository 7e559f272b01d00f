/* lua_policy: two registry tables: the set (name -> kind) that every global access looks
 * up, and the list as given, which is what _ENV[""] reads back. */
#include "lua_policy.h"
#include "lua_host.h"

#include <lauxlib.h>
#include <string.h>

/* Registry keys: the addresses of these constants are unique light userdata. */
static const char K_POLICY = 0; /* name -> SN_POLICY_PLAIN | SN_POLICY_STARRED */
static const char K_PLIST = 0;  /* the names as given, in order */

void sn_policy_open(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_PLIST);
}

void sn_policy_push_set(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
}

int sn_policy_push_list(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PLIST);
    lua_Integer n = luaL_len(L, -1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_rawseti(L, -2, i);
    }
    lua_remove(L, -2);
    return 1;
}

int sn_policy_kind(lua_State *L, const char *name)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY) != LUA_TTABLE) {
        lua_pop(L, 1);
        return SN_POLICY_NONE;
    }
    int kind = lua_getfield(L, -1, name) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 2);
    return kind;
}

int sn_policy_kind_at(lua_State *L, int k)
{
    k = lua_absindex(L, k);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_pushvalue(L, k);
    int kind = lua_rawget(L, -2) == LUA_TNIL ? 0 : (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return kind;
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

void sn_policy_check(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        luaL_error(L, "_ENV[\"\"] expects a list of names, got %s", luaL_typename(L, idx));
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, idx, i);
        if (t != LUA_TSTRING)
            luaL_error(L, "_ENV[\"\"] entry %d: expected a name (string), got %s", (int)i,
                       lua_typename(L, t));
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (len == 0)
            luaL_error(L, "_ENV[\"\"] entry %d: empty name", (int)i);
        if (s[0] == '*' && len == 1)
            luaL_error(L, "_ENV[\"\"] entry %d: '*' must be followed by a name", (int)i);
        if (!valid_name(s + (s[0] == '*'), len - (s[0] == '*')))
            luaL_error(L, "_ENV[\"\"] entry %d: '%s' is not a valid global name", (int)i, s);
        lua_pop(L, 1);
    }
}

int sn_policy_add(lua_State *L, const char *entry)
{
    int kind = entry[0] == '*' ? SN_POLICY_STARRED : SN_POLICY_PLAIN;
    const char *name = entry + (kind == SN_POLICY_STARRED);
    int old = sn_policy_kind(L, name);
    if (old >= kind)
        return SN_POLICY_NONE;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_pushstring(L, name);
    lua_pushinteger(L, kind);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PLIST);
    int plist = lua_gettop(L);
    lua_pushstring(L, entry);
    if (old) { /* upgrade: rewrite the listed entry */
        lua_Integer m = luaL_len(L, plist);
        for (lua_Integer j = 1; j <= m; j++) {
            lua_rawgeti(L, plist, j);
            if (strcmp(lua_tostring(L, -1), name) == 0) {
                lua_pushvalue(L, -2);
                lua_rawseti(L, plist, j);
            }
            lua_pop(L, 1);
        }
    } else {
        lua_pushvalue(L, -1);
        lua_rawseti(L, plist, luaL_len(L, plist) + 1);
    }
    lua_pop(L, 2);
    return kind;
}

void sn_policy_clear(lua_State *L)
{
    for (int i = 0; i < 2; i++) { /* keeping the table objects: the metamethods hold one */
        lua_rawgetp(L, LUA_REGISTRYINDEX, i == 0 ? &K_POLICY : &K_PLIST);
        sn_lua_clear_table(L, -1);
        lua_pop(L, 1);
    }
}

void sn_policy_set_starred(lua_State *L, const char *names, size_t len)
{
    sn_policy_clear(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PLIST);
    for (size_t at = 0; at < len;) {
        size_t n = strlen(names + at);
        lua_pushlstring(L, names + at, n);
        lua_pushinteger(L, SN_POLICY_STARRED);
        lua_rawset(L, -4);
        lua_pushfstring(L, "*%s", names + at);
        lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
        at += n + 1;
    }
    lua_pop(L, 2);
}

void sn_policy_push_starred(lua_State *L)
{
    lua_pushliteral(L, "");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* acc, policy, name, kind */
        if (lua_tointeger(L, -1) == SN_POLICY_STARRED) {
            size_t n;
            const char *name = lua_tolstring(L, -2, &n);
            lua_pushvalue(L, -4);
            lua_pushlstring(L, name, n + 1); /* with its NUL */
            lua_concat(L, 2);
            lua_replace(L, -5);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
