/* Fuzz target for sn_snapshot_decode: any input, untrusted (the main target) and trusted.
 * One lua_State is reused across inputs; after each input its stack must be empty again.
 * Decoded values are re-encoded and decoded again (they must round-trip, up to the depth
 * limit); decoded functions are never called: Lua's undump does not defend against crafted
 * bytecode. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sn_error.h"
#include "sn_snapshot.h"

static lua_State *fuzz_state(void)
{
    static lua_State *L; /* the harness's one state, reused so inputs are fast */
    if (!L) {
        L = luaL_newstate();
        luaL_openlibs(L);
    }
    return L;
}

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_snapshot: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    char err[256];
    sn_buf buf;
    sn_buf_init(&buf);
    for (int trusted = 0; trusted <= 1; trusted++) {
        sn_snapshot_opts o;
        sn_snapshot_opts_init(&o);
        o.trusted = trusted;
        int n = -1;
        int rc = sn_snapshot_decode(L, (const char *)data, size, &o, &n, err, sizeof err);
        if (rc != SN_OK) {
            check(lua_gettop(L) == 0 && n == 0, "a failed decode left values on the stack");
            continue;
        }
        check(lua_gettop(L) == n, "decode pushed a wrong number of values");
        sn_buf_reset(&buf);
        rc = sn_snapshot_encode(L, 1, n, &o, &buf, err, sizeof err);
        /* Depth is counted along the path of first occurrence, and the encoder walks tables in
         * lua_next order, not the sender's: shared tables can make that path longer. */
        if (rc == SN_ELIMIT) {
            lua_settop(L, 0);
            continue;
        }
        if (rc != SN_OK)
            fprintf(stderr, "fuzz_snapshot: %s\n", err);
        check(rc == SN_OK, "a decoded value did not encode again");
        lua_settop(L, 0);
        int n2 = -1;
        rc = sn_snapshot_decode(L, buf.data, buf.len, &o, &n2, err, sizeof err);
        check(rc == SN_OK && n2 == n, "a re-encoded snapshot did not decode");
        lua_settop(L, 0);
    }
    sn_buf_fini(&buf);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
