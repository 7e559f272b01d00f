/* sn_snapshot_encode_error: byte for byte what sn_snapshot_encode writes for (nil, text) from a
 * lua_State, for texts at every str header width, and it appends without touching what is
 * already in the buffer. The cluster uses it to answer failed requests without a lua_State. */
#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "sn_error.h"
#include "sn_snapshot.h"
#include "sn_snapshot_error.h"

/* What the Lua-side encoder writes for (nil, text). */
static void reference(lua_State *L, const char *text, sn_buf *out)
{
    lua_settop(L, 0);
    lua_pushnil(L);
    lua_pushstring(L, text);
    char err[256] = "";
    cr_assert_eq(sn_snapshot_encode(L, 1, 2, NULL, out, err, sizeof err), SN_OK, "%s", err);
    lua_settop(L, 0);
}

Test(sn_snapshot_error, byte_identical_to_the_lua_encoder)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    static const size_t lens[] = {0, 1, 9, 31, 32, 33, 255, 256, 65535, 65536, 100000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        char *text = malloc(n + 1);
        for (size_t k = 0; k < n; k++)
            text[k] = (char)(1 + (k * 31 + i) % 255); /* every byte but NUL */
        text[n] = 0;
        sn_buf want, got;
        sn_buf_init(&want);
        sn_buf_init(&got);
        reference(L, text, &want);
        cr_assert_eq(sn_snapshot_encode_error(&got, text), SN_OK);
        cr_assert_eq(got.len, want.len, "text of %zu bytes: %zu bytes, Lua encoder %zu", n, got.len,
                     want.len);
        cr_assert(memcmp(got.data, want.data, got.len) == 0, "text of %zu bytes differs", n);
        /* and it decodes to nil, text */
        int nv = 0;
        char err[256] = "";
        cr_assert_eq(sn_snapshot_decode(L, got.data, got.len, NULL, &nv, err, sizeof err), SN_OK,
                     "%s", err);
        cr_assert_eq(nv, 2);
        cr_assert(lua_isnil(L, 1));
        size_t len;
        const char *s = lua_tolstring(L, 2, &len);
        cr_assert(len == n && memcmp(s, text, n) == 0);
        lua_settop(L, 0);
        sn_buf_fini(&want);
        sn_buf_fini(&got);
        free(text);
    }
    lua_close(L);
}

Test(sn_snapshot_error, null_is_the_empty_text_and_appends)
{
    lua_State *L = luaL_newstate();
    sn_buf want, got;
    sn_buf_init(&want);
    sn_buf_init(&got);
    reference(L, "", &want);
    memcpy(got.data = malloc(3), "abc", 3);
    got.len = got.cap = 3;
    cr_assert_eq(sn_snapshot_encode_error(&got, NULL), SN_OK);
    cr_assert(memcmp(got.data, "abc", 3) == 0, "the bytes before were changed");
    cr_assert_eq(got.len - 3, want.len);
    cr_assert(memcmp(got.data + 3, want.data, want.len) == 0);
    /* the documented bytes: version 1, array of 2, nil, fixstr "node down" */
    sn_buf_reset(&got);
    cr_assert_eq(sn_snapshot_encode_error(&got, "node down"), SN_OK);
    cr_assert_eq(got.len, 13);
    cr_assert(memcmp(got.data, "\x01\x92\xc0\xa9node down", 13) == 0);
    sn_buf_fini(&want);
    sn_buf_fini(&got);
    lua_close(L);
}
