/* lua_policy: adding, upgrading, the list as given, checks, and the form a job carries. */
#include "lua_policy.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <string.h>

static lua_State *L;

static void setup(void)
{
    L = luaL_newstate();
    cr_assert_not_null(L);
    sn_policy_open(L);
}

static void teardown(void)
{
    lua_close(L);
}

TestSuite(lua_policy, .init = setup, .fini = teardown);

/* The list as _ENV[""] reads it, joined with spaces. */
static const char *list(void)
{
    static char out[256];
    out[0] = '\0';
    sn_policy_push_list(L);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
        if (i > 1)
            strcat(out, " ");
        strcat(out, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    return out;
}

Test(lua_policy, add_upgrade_and_order)
{
    cr_assert_eq(sn_policy_kind(L, "A"), SN_POLICY_NONE);
    cr_assert_eq(sn_policy_add(L, "A"), SN_POLICY_PLAIN);
    cr_assert_eq(sn_policy_add(L, "*B"), SN_POLICY_STARRED);
    cr_assert_eq(sn_policy_add(L, "A"), SN_POLICY_NONE, "adding again changes nothing");
    cr_assert_eq(sn_policy_add(L, "B"), SN_POLICY_NONE, "plain never downgrades starred");
    cr_assert_eq(sn_policy_add(L, "*A"), SN_POLICY_STARRED, "starred upgrades plain");
    cr_assert_eq(sn_policy_add(L, "C"), SN_POLICY_PLAIN);
    cr_assert_eq(sn_policy_kind(L, "A"), SN_POLICY_STARRED);
    cr_assert_eq(sn_policy_kind(L, "B"), SN_POLICY_STARRED);
    cr_assert_eq(sn_policy_kind(L, "C"), SN_POLICY_PLAIN);
    cr_assert_str_eq(list(), "*A *B C", "the upgrade rewrites A in place");
    lua_pushstring(L, "C");
    cr_assert_eq(sn_policy_kind_at(L, -1), SN_POLICY_PLAIN);
    lua_pushinteger(L, 3);
    cr_assert_eq(sn_policy_kind_at(L, -1), SN_POLICY_NONE);
    lua_pop(L, 2);
}

static int check(lua_State *S)
{
    sn_policy_check(S, 1);
    return 0;
}

/* Runs sn_policy_check on the list made by code; NULL when accepted, else the error. */
static const char *check_list(const char *code)
{
    lua_pushcfunction(L, check);
    cr_assert_eq(luaL_dostring(L, code), LUA_OK);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK)
        return NULL;
    return lua_tostring(L, -1);
}

Test(lua_policy, check_names_the_bad_entry)
{
    cr_assert_null(check_list("return { 'a', '*_b9' }"));
    cr_assert_str_eq(check_list("return 5"), "_ENV[\"\"] expects a list of names, got number");
    cr_assert_str_eq(check_list("return { 'a', 1 }"),
                     "_ENV[\"\"] entry 2: expected a name (string), got number");
    cr_assert_str_eq(check_list("return { '' }"), "_ENV[\"\"] entry 1: empty name");
    cr_assert_str_eq(check_list("return { '*' }"),
                     "_ENV[\"\"] entry 1: '*' must be followed by a name");
    cr_assert_str_eq(check_list("return { 'ok', '9x' }"),
                     "_ENV[\"\"] entry 2: '9x' is not a valid global name");
    cr_assert_eq(sn_policy_kind(L, "ok"), SN_POLICY_NONE, "a check changes nothing");
}

Test(lua_policy, starred_names_round_trip)
{
    sn_policy_add(L, "plain");
    sn_policy_add(L, "*one");
    sn_policy_push_starred(L);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(s, "one", 4), 0);
    char names[] = "x\0yz"; /* what a job carries: each name NUL-terminated */
    sn_policy_set_starred(L, names, sizeof names);
    lua_pop(L, 1);
    cr_assert_eq(sn_policy_kind(L, "plain"), SN_POLICY_NONE, "the old policy is gone");
    cr_assert_eq(sn_policy_kind(L, "one"), SN_POLICY_NONE);
    cr_assert_eq(sn_policy_kind(L, "x"), SN_POLICY_STARRED);
    cr_assert_eq(sn_policy_kind(L, "yz"), SN_POLICY_STARRED);
    cr_assert_str_eq(list(), "*x *yz");
    sn_policy_clear(L);
    cr_assert_eq(sn_policy_kind(L, "x"), SN_POLICY_NONE);
    cr_assert_str_eq(list(), "");
}
