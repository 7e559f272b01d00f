/* lua_rank: a board is a full userdata holding an sn_rank pointer; its finalizer frees the
 * board (C's own metatable: scripts cannot set __gc, this one is ours). Tiers are 1..4 in
 * Lua, as STAGE's "/TIER" suffix counts them. */
#include "lua_rank.h"
#include "sn_error.h"
#include "sn_rank.h"

#include <lauxlib.h>
#include <string.h>

#define BOARD "stage-node.rank"

static sn_rank *check_board(lua_State *L)
{
    sn_rank **b = luaL_checkudata(L, 1, BOARD);
    if (!*b)
        luaL_error(L, "rank board: already freed");
    return *b;
}

static unsigned check_tier(lua_State *L, int arg)
{
    lua_Integer t = luaL_checkinteger(L, arg);
    if (t < 1 || t > SN_RANK_TIERS)
        luaL_error(L, "rank board: tier %d out of 1..%d", (int)t, SN_RANK_TIERS);
    return (unsigned)(t - 1);
}

static const char *check_key(lua_State *L, int arg)
{
    size_t len;
    const char *k = luaL_checklstring(L, arg, &len);
    if (strlen(k) != len)
        luaL_error(L, "rank board: a key holds no NUL byte");
    return k;
}

static int fail(lua_State *L, int rc)
{
    lua_pushnil(L);
    lua_pushstring(L, rc == SN_ELIMIT ? "too many keys" : sn_strerror(rc));
    return 2;
}

/* b:set(tier, key, score) -> rank | nil, why */
static int l_set(lua_State *L)
{
    sn_rank *r = check_board(L);
    unsigned tier = check_tier(L, 2);
    const char *key = check_key(L, 3);
    lua_Integer score = luaL_checkinteger(L, 4);
    size_t rank = 0;
    int rc = sn_rank_set(r, tier, key, (int64_t)score, &rank);
    if (rc != SN_OK)
        return fail(L, rc);
    lua_pushinteger(L, (lua_Integer)rank);
    return 1;
}

/* b:touch(key) -> true | nil, why */
static int l_touch(lua_State *L)
{
    int rc = sn_rank_touch(check_board(L), check_key(L, 2));
    if (rc != SN_OK)
        return fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* b:unset(tier, key) -> boolean */
static int l_unset(lua_State *L)
{
    sn_rank *r = check_board(L);
    unsigned tier = check_tier(L, 2);
    lua_pushboolean(L, sn_rank_unset(r, tier, check_key(L, 3)) == SN_OK);
    return 1;
}

/* b:remove(key) -> boolean */
static int l_remove(lua_State *L)
{
    lua_pushboolean(L, sn_rank_remove(check_board(L), check_key(L, 2)) == SN_OK);
    return 1;
}

static int l_has(lua_State *L)
{
    lua_pushboolean(L, sn_rank_has(check_board(L), check_key(L, 2)));
    return 1;
}

/* b:get(tier, key) -> score, rank | nil */
static int l_get(lua_State *L)
{
    sn_rank *r = check_board(L);
    unsigned tier = check_tier(L, 2);
    int64_t score;
    size_t rank;
    if (sn_rank_get(r, tier, check_key(L, 3), &score, &rank) != SN_OK) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)score);
    lua_pushinteger(L, (lua_Integer)rank);
    return 2;
}

/* b:count(tier) -> entries with a score in tier; b:keys() -> all keys */
static int l_count(lua_State *L)
{
    sn_rank *r = check_board(L);
    lua_pushinteger(L, (lua_Integer)sn_rank_count(r, check_tier(L, 2)));
    return 1;
}

static int l_keys(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sn_rank_keys(check_board(L)));
    return 1;
}

/* b:lower(tier, score) -> the rank of the first entry whose score is <= score */
static int l_lower(lua_State *L)
{
    sn_rank *r = check_board(L);
    unsigned tier = check_tier(L, 2);
    lua_pushinteger(L, (lua_Integer)sn_rank_lower(r, tier, (int64_t)luaL_checkinteger(L, 3)));
    return 1;
}

/* What a walk fills: the result table at index out, values (or 0) at index values. */
typedef struct walk_out {
    lua_State *L;
    int out, values;
} walk_out;

static int put_row(void *ud, size_t rank, const char *key, int64_t score)
{
    walk_out *w = ud;
    lua_State *L = w->L;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, key);
    if (w->values) {
        lua_pushvalue(L, -1);
        if (lua_rawget(L, w->values) != LUA_TNIL)
            lua_setfield(L, -3, "v");
        else
            lua_pop(L, 1);
    }
    lua_setfield(L, -2, "k");
    lua_pushinteger(L, (lua_Integer)score);
    lua_setfield(L, -2, "i");
    lua_pushinteger(L, (lua_Integer)rank);
    lua_setfield(L, -2, "d");
    lua_rawseti(L, w->out, (lua_Integer)rank);
    return 0;
}

/* b:walk(tier, from, count [, values]) -> {[rank] = {k=, i=, d=, v=values[k]}, ...} */
static int l_walk(lua_State *L)
{
    sn_rank *r = check_board(L);
    unsigned tier = check_tier(L, 2);
    lua_Integer from = luaL_checkinteger(L, 3), count = luaL_checkinteger(L, 4);
    int values = 0;
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        values = 5;
    }
    lua_settop(L, 5);
    luaL_checkstack(L, 8, "rank board walk");
    /* sized once: rows keyed by rank, in the array part when the walk starts at rank 1 */
    int n = count > 0 && count < 65536 ? (int)count : 0;
    lua_createtable(L, from == 1 ? n : 0, from == 1 ? 0 : n);
    if (from >= 1 && count > 0) {
        walk_out w = {L, lua_gettop(L), values};
        sn_rank_walk(r, tier, (size_t)from, (size_t)count, put_row, &w);
    }
    return 1;
}

static int l_gc(lua_State *L)
{
    sn_rank **b = luaL_checkudata(L, 1, BOARD);
    sn_rank_destroy(b);
    return 0;
}

/* stage.rank([max_keys]) -> a new, empty board */
static int l_new(lua_State *L)
{
    lua_Integer max = luaL_optinteger(L, 1, 0);
    if (max < 0)
        return luaL_error(L, "stage.rank: max_keys must be >= 0 (0: no limit), got %d",
                          (int)max);
    sn_rank **b = lua_newuserdata(L, sizeof *b);
    *b = NULL;
    luaL_setmetatable(L, BOARD);
    *b = sn_rank_new((size_t)max);
    if (!*b)
        return luaL_error(L, "stage.rank: %s", sn_strerror(SN_ENOMEM));
    return 1;
}

void sn_lua_rank_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"set", l_set},     {"touch", l_touch}, {"unset", l_unset}, {"remove", l_remove},
        {"has", l_has},     {"get", l_get},     {"count", l_count}, {"keys", l_keys},
        {"lower", l_lower}, {"walk", l_walk},   {NULL, NULL}};
    if (luaL_newmetatable(L, BOARD)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "rank board");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    if (lua_getglobal(L, "stage") == LUA_TTABLE) {
        lua_pushcfunction(L, l_new);
        lua_setfield(L, -2, "rank");
    }
    lua_pop(L, 1);
}
