/* lua_rank: a board is a full userdata holding an sn_rank pointer; its finalizer frees the
 * board (C's own metatable: scripts cannot set __gc, this one is ours). Tiers are 1..4 in
 * Lua, as STAGE's "/TIER" suffix counts them. The index's hot commands (a get of one key, a
 * set of entries with one score each, a walk) build their answer here in one call; a walk
 * reuses the Lua strings of the keys it has pushed lately (a table of the state's registry,
 * shared by its boards, maps a board's key pointer to its string, checked against the bytes,
 * so a freed and reused pointer is only a miss). */
#include "lua_rank.h"
#include "sn_error.h"
#include "sn_rank.h"

#include <lauxlib.h>
#include <string.h>

#define BOARD "stage-node.rank"

enum { KEY_STRINGS_MAX = 4096 }; /* key strings a state keeps for its walks; then emptied */

static const char key_strings = 0; /* its address: the registry key of the key strings */

typedef struct board {
    sn_rank *rank;
} board;

static sn_rank *check_board(lua_State *L)
{
    board *b = luaL_checkudata(L, 1, BOARD);
    if (!b->rank)
        luaL_error(L, "rank board: already freed");
    return b->rank;
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

/* What a walk fills: the result table at index out, values (or 0) at index values, the
 * state's key strings at index strings ([0]: how many it holds). */
typedef struct walk_out {
    lua_State *L;
    int out, values, strings;
} walk_out;

/* Pushes key as a Lua string, the one kept for the board's pointer key when its bytes match. */
static void push_key(walk_out *w, const char *key)
{
    lua_State *L = w->L;
    lua_pushlightuserdata(L, (void *)key);
    if (lua_rawget(L, w->strings) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (strncmp(s, key, len) == 0 && key[len] == '\0')
            return;
    }
    lua_pop(L, 1);
    lua_rawgeti(L, w->strings, 0);
    lua_Integer n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (n >= KEY_STRINGS_MAX) { /* a fresh table: stale pointers go with the old one */
        lua_newtable(L);
        lua_replace(L, w->strings);
        lua_pushvalue(L, w->strings);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_strings);
        n = 0;
    }
    lua_pushinteger(L, n + 1);
    lua_rawseti(L, w->strings, 0);
    lua_pushstring(L, key);
    lua_pushlightuserdata(L, (void *)key);
    lua_pushvalue(L, -2);
    lua_rawset(L, w->strings);
}

static int put_row(void *ud, size_t rank, const char *key, int64_t score)
{
    walk_out *w = ud;
    lua_State *L = w->L;
    lua_createtable(L, 0, 4);
    push_key(w, key);
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
    luaL_checkstack(L, 10, "rank board walk");
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_strings) != LUA_TTABLE) { /* 6 */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_strings);
    }
    /* sized once: rows keyed by rank, in the array part when the walk starts at rank 1 */
    int n = count > 0 && count < 65536 ? (int)count : 0;
    lua_createtable(L, from == 1 ? n : 0, from == 1 ? 0 : n);
    if (from >= 1 && count > 0) {
        walk_out w = {L, lua_gettop(L), values, 6};
        sn_rank_walk(r, tier, (size_t)from, (size_t)count, put_row, &w);
    }
    return 1;
}

/* b:answer_get(tier, key, values) -> {[key] = {v = values[key], I = {{d = rank, i = score}}}}
 * (I absent without a score in tier, {} for an absent key): the index's get of one key, or
 * nothing when key holds a NUL byte (the caller's general path says why). */
static int l_answer_get(lua_State *L)
{
    sn_rank *r = check_board(L);
    unsigned tier = check_tier(L, 2);
    size_t len;
    const char *k = luaL_checklstring(L, 3, &len);
    luaL_checktype(L, 4, LUA_TTABLE);
    if (strlen(k) != len)
        return 0;
    int has = sn_rank_has(r, k);
    int64_t score = 0;
    size_t rank = 0;
    int scored = has && sn_rank_get(r, tier, k, &score, &rank) == SN_OK;
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 3);
    lua_createtable(L, 0, has ? 2 : 0);
    if (has) {
        lua_pushvalue(L, 3);
        if (lua_rawget(L, 4) != LUA_TNIL)
            lua_setfield(L, -2, "v");
        else
            lua_pop(L, 1);
    }
    if (scored) {
        lua_createtable(L, 1, 0);
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)rank);
        lua_setfield(L, -2, "d");
        lua_pushinteger(L, (lua_Integer)score);
        lua_setfield(L, -2, "i");
        lua_rawseti(L, -2, 1);
        lua_setfield(L, -2, "I");
    }
    lua_rawset(L, -3);
    return 1;
}

/* Is the entry at the top {i = integer [, v = value]}, key a string of 1..max bytes without
 * NUL, both without metatables? The stack is as it was when it says 1. */
static int plain_entry(lua_State *L, int key, size_t max)
{
    size_t len;
    if (lua_type(L, key) != LUA_TSTRING || lua_type(L, -1) != LUA_TTABLE ||
        lua_getmetatable(L, -1))
        return 0;
    const char *k = lua_tolstring(L, key, &len);
    if (len == 0 || len > max || strlen(k) != len)
        return 0;
    int ok = lua_getfield(L, -1, "I") == LUA_TNIL;
    lua_pop(L, 1);
    ok = ok && lua_getfield(L, -1, "i") == LUA_TNUMBER && lua_isinteger(L, -1);
    lua_pop(L, 1);
    return ok;
}

/* b:answer_set(tier, entries, values, max_key_bytes) -> {KEY = rank in tier}: the index's set
 * when every entry is {i = integer [, v = value]} under a plain string key; in the order of
 * next(), each key is added when absent, scored in tier (a failed score leaves its rank out,
 * as b:set's nil does), and its v (when given) stored in values. Nothing when an entry is
 * anything else (nothing changed), or when the board refuses a new key (the entries before
 * it are set): the caller's general path then sets the same entries again, to the same
 * result, and says why at the same key. */
static int l_answer_set(lua_State *L)
{
    sn_rank *r = check_board(L);
    unsigned tier = check_tier(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    size_t max = (size_t)luaL_checkinteger(L, 5);
    lua_settop(L, 5);
    if (lua_getmetatable(L, 3))
        return 0;
    size_t n = 0;
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1), n++)
        if (!plain_entry(L, -2, max)) {
            lua_settop(L, 5);
            return 0;
        }
    lua_createtable(L, 0, n < 64 ? (int)n : 0); /* 6: the answer */
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
        const char *k = lua_tostring(L, -2);
        if (sn_rank_touch(r, k) != SN_OK)
            return 0;
        lua_getfield(L, -1, "i");
        int64_t score = (int64_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        size_t rank = 0;
        int scored = sn_rank_set(r, tier, k, score, &rank) == SN_OK;
        if (lua_getfield(L, -1, "v") != LUA_TNIL) {
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, 4);
        } else {
            lua_pop(L, 1);
        }
        if (scored) {
            lua_pushvalue(L, -2);
            lua_pushinteger(L, (lua_Integer)rank);
            lua_rawset(L, 6);
        }
    }
    return 1;
}

static int l_gc(lua_State *L)
{
    board *b = luaL_checkudata(L, 1, BOARD);
    sn_rank_destroy(&b->rank);
    return 0;
}

/* stage.rank([max_keys]) -> a new, empty board */
static int l_new(lua_State *L)
{
    lua_Integer max = luaL_optinteger(L, 1, 0);
    if (max < 0)
        return luaL_error(L, "stage.rank: max_keys must be >= 0 (0: no limit), got %d",
                          (int)max);
    board *b = lua_newuserdata(L, sizeof *b);
    b->rank = NULL;
    luaL_setmetatable(L, BOARD);
    b->rank = sn_rank_new((size_t)max);
    if (!b->rank)
        return luaL_error(L, "stage.rank: %s", sn_strerror(SN_ENOMEM));
    return 1;
}

void sn_lua_rank_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"set", l_set},     {"touch", l_touch}, {"unset", l_unset}, {"remove", l_remove},
        {"has", l_has},     {"get", l_get},     {"count", l_count}, {"keys", l_keys},
        {"lower", l_lower}, {"walk", l_walk},   {"answer_get", l_answer_get},
        {"answer_set", l_answer_set}, {NULL, NULL}};
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
