/* lua_sandbox: the policy and the coroutine environments, driven from C. */
#include "lua_sandbox.h"
#include "lua_state.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static sn_lua_host host;
static lua_State *L;

static void setup(void)
{
    host = (sn_lua_host){.log = sn_log_new(stderr, SN_LOG_ERROR), .who = "test"};
    L = sn_lua_new(&host);
    cr_assert_not_null(L);
}

static void teardown(void)
{
    lua_close(L);
    sn_log_destroy(&host.log);
}

static const char *run(const char *code)
{
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        return lua_tostring(L, -1);
    return lua_tostring(L, -1);
}

TestSuite(lua_sandbox, .init = setup, .fini = teardown);

Test(lua_sandbox, policy_kinds)
{
    run("_ENV[''] = { 'A', '*B' }");
    cr_assert_eq(sn_sandbox_policy_kind(L, "A"), 1);
    cr_assert_eq(sn_sandbox_policy_kind(L, "B"), 2);
    cr_assert_eq(sn_sandbox_policy_kind(L, "C"), 0);
    run("_ENV[''] = { '*A' }");
    cr_assert_eq(sn_sandbox_policy_kind(L, "A"), 2);
}

Test(lua_sandbox, coroutine_writes_stay_private)
{
    cr_assert_str_eq(run("X = 1; coroutine.wrap(function () X = 2 end)(); return tostring(X)"),
                     "1");
}

Test(lua_sandbox, c_api_globals_see_the_view)
{
    run("Y = 'old'; coroutine.wrap(function () end)()"); /* Y now lives in a frozen layer */
    lua_getglobal(L, "Y");
    cr_assert_str_eq(lua_tostring(L, -1), "old");
    lua_pop(L, 1);
    lua_pushstring(L, "new");
    lua_setglobal(L, "Y");
    cr_assert_str_eq(run("return Y"), "new");
}

Test(lua_sandbox, plain_resume_of_foreign_threads)
{
    /* A coroutine made by C (not coroutine.create) still resumes, with no sandbox. */
    lua_State *co = lua_newthread(L);
    luaL_loadstring(co, "Z = 5 coroutine.yield(7)");
    lua_setglobal(L, "co");
    cr_assert_str_eq(run("local ok, v = coroutine.resume(co) return tostring(v) .. tostring(Z)"),
                     "75");
}

Test(lua_sandbox, deep_nesting_restores_bodies)
{
    const char *code = "local depth = 0\n"
                       "local function body(n)\n"
                       "  if n == 0 then return DEPTHV end\n"
                       "  DEPTHV = n\n"
                       "  return coroutine.wrap(body)(n - 1)\n"
                       "end\n"
                       "DEPTHV = 'main'\n"
                       "local r = coroutine.wrap(body)(50)\n"
                       "return tostring(r) .. ',' .. tostring(DEPTHV)";
    cr_assert_str_eq(run(code), "1,main");
}
