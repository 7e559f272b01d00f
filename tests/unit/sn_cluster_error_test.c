/* sn_snapshot_encode_error (the cluster's failed-reply payload, written without Lua) is
 * byte-identical to sn_snapshot_encode of (nil, text) at every string length class. */
#include "sn_buf.h"
#include "sn_error.h"
#include "sn_snapshot.h"
#include "sn_snapshot_error.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

Test(sn_cluster_error, same_bytes_as_the_snapshot_encoder)
{
    static const size_t lens[] = {0, 1, 9, 31, 32, 200, 255, 256, 65535, 65536, 100000};
    lua_State *L = luaL_newstate();
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        char *text = malloc(lens[i] + 1);
        memset(text, 'x', lens[i]);
        text[lens[i]] = '\0';
        lua_settop(L, 0);
        lua_pushnil(L);
        lua_pushstring(L, text);
        sn_snapshot_opts o;
        sn_snapshot_opts_init(&o);
        sn_buf want, got;
        sn_buf_init(&want);
        sn_buf_init(&got);
        char err[128];
        cr_assert_eq(sn_snapshot_encode(L, 1, 2, &o, &want, err, sizeof err), SN_OK, "%s", err);
        cr_assert_eq(sn_snapshot_encode_error(&got, text), SN_OK);
        cr_assert_eq(got.len, want.len, "length %zu: %zu bytes, want %zu", lens[i], got.len,
                     want.len);
        cr_assert(memcmp(got.data, want.data, got.len) == 0, "length %zu: bytes differ", lens[i]);
        sn_buf_fini(&want);
        sn_buf_fini(&got);
        free(text);
    }
    lua_close(L);
}
