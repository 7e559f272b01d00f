/* lua_env: envs with frozen layers, driven through minimal metamethods (no policy names),
 * so the snapshot rules are tested apart from what the sandbox makes of them. */
#include "lua_env.h"
#include "lua_policy.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

static lua_State *L;

static int env_index(lua_State *S)
{
    sn_env_get(S, 1, 2);
    return 1;
}

static int env_newindex(lua_State *S)
{
    sn_env_set(S, 1, 2, 3);
    return 0;
}

static void setup(void)
{
    L = luaL_newstate();
    cr_assert_not_null(L);
    luaL_requiref(L, "_G", luaopen_base, 1);
    lua_pop(L, 1);
    sn_policy_open(L);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, env_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, env_newindex);
    lua_setfield(L, -2, "__newindex");
    sn_env_open(L);
}

static void teardown(void)
{
    lua_close(L);
}

TestSuite(lua_env, .init = setup, .fini = teardown);

/* Runs code with env E (a global of the real globals table) as its _ENV. */
static void run_in(const char *env, const char *code)
{
    cr_assert_eq(luaL_loadstring(L, code), LUA_OK, "%s", lua_tostring(L, -1));
    lua_getglobal(L, env);
    cr_assert(lua_setupvalue(L, -2, 1));
    cr_assert_eq(lua_pcall(L, 0, 0, 0), LUA_OK, "%s", lua_tostring(L, -1));
}

/* A new env reading through a snapshot of the globals, stored as global `name`. */
static void child(const char *name)
{
    lua_pushglobaltable(L);
    sn_env_freeze(L, -1);
    lua_createtable(L, 0, 0);
    sn_env_push_child_mt(L, -2);
    lua_setmetatable(L, -2);
    lua_setglobal(L, name); /* a raw write into the globals: after the freeze, no touch */
    lua_pop(L, 1);
}

static const char *get(const char *env, const char *name)
{
    static char out[64];
    lua_getglobal(L, env);
    lua_getfield(L, -1, name);
    snprintf(out, sizeof out, "%s", lua_isnil(L, -1) ? "nil" : lua_tostring(L, -1));
    lua_pop(L, 2);
    return out;
}

Test(lua_env, a_child_sees_the_snapshot_not_later_writes)
{
    lua_pushliteral(L, "g1");
    lua_setglobal(L, "A");
    lua_pushliteral(L, "g1");
    lua_setglobal(L, "B");
    child("C1");
    lua_pushliteral(L, "g2");
    lua_setglobal(L, "A"); /* the globals go on; C1 keeps its snapshot */
    run_in("C1", "B = 'c1'");
    cr_assert_str_eq(get("C1", "A"), "g1");
    cr_assert_str_eq(get("C1", "B"), "c1");
    lua_getglobal(L, "B");
    cr_assert_str_eq(lua_tostring(L, -1), "g1", "a child's write stays in the child");
    lua_pop(L, 1);
    lua_getglobal(L, "C1");
    lua_getmetatable(L, -1);
    lua_pushglobaltable(L);
    cr_assert_eq(sn_env_push_creator(L, -3), LUA_TTABLE);
    cr_assert(lua_rawequal(L, -1, -2), "the creator is the globals");
    lua_pop(L, 4);
    lua_pushglobaltable(L);
    cr_assert_eq(sn_env_push_creator(L, -1), LUA_TNIL, "the globals have no creator");
    lua_pop(L, 2);
}

Test(lua_env, a_deletion_hides_the_frozen_value)
{
    lua_pushliteral(L, "old");
    lua_setglobal(L, "D");
    child("C1");
    run_in("C1", "D = nil");
    cr_assert_str_eq(get("C1", "D"), "nil");
    lua_getglobal(L, "C1");
    sn_env_freeze(L, -1); /* the deletion becomes a tomb in the child's own chain */
    lua_pop(L, 1);
    cr_assert_str_eq(get("C1", "D"), "nil");
    lua_getglobal(L, "D");
    cr_assert_str_eq(lua_tostring(L, -1), "old");
    lua_pop(L, 1);
}

Test(lua_env, the_view_has_raw_frozen_and_no_deleted_names)
{
    lua_pushliteral(L, "1");
    lua_setglobal(L, "KEEP");
    lua_pushliteral(L, "1");
    lua_setglobal(L, "GONE");
    child("C1");
    run_in("C1", "GONE = nil NEW = '2'");
    lua_getglobal(L, "C1");
    sn_env_push_view(L, -1);
    lua_getfield(L, -1, "KEEP");
    lua_getfield(L, -2, "GONE");
    lua_getfield(L, -3, "NEW");
    cr_assert_str_eq(lua_tostring(L, -3), "1");
    cr_assert(lua_isnil(L, -2));
    cr_assert_str_eq(lua_tostring(L, -1), "2");
    lua_pop(L, 5);
}

Test(lua_env, many_freezes_compact_and_still_read_right)
{
    for (int i = 0; i < 30; i++) { /* past the longest chain: layers are merged */
        char code[96];
        int n = snprintf(code, sizeof code, "V%d = '%d' LAST = '%d'", i, i, i);
        if (i >= 3)
            snprintf(code + n, sizeof code - (size_t)n, " V%d = nil", i - 3);
        run_in("_G", code);
        child("C");
    }
    cr_assert_str_eq(get("C", "LAST"), "29");
    cr_assert_str_eq(get("C", "V29"), "29");
    cr_assert_str_eq(get("C", "V27"), "27");
    cr_assert_str_eq(get("C", "V26"), "nil", "deleted three rounds later");
    cr_assert_str_eq(get("C", "V0"), "nil");
}

Test(lua_env, job_envs_read_the_sealed_view)
{
    lua_pushliteral(L, "sealed");
    lua_setglobal(L, "S");
    sn_env_seal(L);
    sn_env_job_begin(L);
    lua_setglobal(L, "J");
    sn_env_push_base(L);
    lua_getglobal(L, "J");
    cr_assert(lua_rawequal(L, -1, -2), "the job env is the base env");
    lua_pop(L, 2);
    run_in("J", "S2 = S .. '+job'");
    cr_assert_str_eq(get("J", "S2"), "sealed+job");
    lua_getglobal(L, "J");
    lua_getfield(L, -1, "_G");
    cr_assert(lua_rawequal(L, -1, -2), "a job env's _G is itself");
    lua_pop(L, 2);
    lua_getglobal(L, "S2");
    cr_assert(lua_isnil(L, -1), "a job's writes stay in its env");
    lua_pop(L, 1);
    sn_env_job_end(L);
    sn_env_push_base(L);
    lua_pushglobaltable(L);
    cr_assert(lua_rawequal(L, -1, -2));
    lua_pop(L, 2);
}
