/* lua_chunks: a file compiled once is loaded from its bytecode with the same name, lines and
 * results; an edit is seen; a full cache is logged and the files still load. */
#include "lua_chunks.h"
#include "lua_state.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static FILE *capture;
static sn_lua_ctx ctx;
static sn_lua_host host;
static lua_State *L;
static char dir[] = "/tmp/sn_chunks_XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    capture = tmpfile();
    cr_assert_not_null(capture);
    ctx = (sn_lua_ctx){.chunks = sn_lua_chunks_new(0, 0, 0)};
    cr_assert_not_null(ctx.chunks);
    host = (sn_lua_host){.log = sn_log_new(capture, SN_LOG_WARN), .who = "test", .ctx = &ctx};
    L = sn_lua_new(&host);
    cr_assert_not_null(L);
}

static void teardown(void)
{
    lua_close(L);
    sn_log_destroy(&host.log);
    sn_lua_chunks_destroy(&ctx.chunks);
    cr_assert_null(ctx.chunks);
    fclose(capture);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(lua_chunks, .init = setup, .fini = teardown);

/* Writes text to dir/name, dated a minute back (old enough to be kept); returns the path. */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    struct timeval old[2];
    gettimeofday(&old[0], NULL);
    old[0].tv_sec -= 60;
    old[1] = old[0];
    cr_assert_eq(utimes(path, old), 0);
    return path;
}

/* Loads path through cache c and runs it: its first result as a string, or the error. */
static const char *run_in(sn_lua_chunks *c, const char *path)
{
    static char out[256];
    if (sn_lua_chunks_load(c, L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        snprintf(out, sizeof out, "error: %s", lua_tostring(L, -1));
    else
        snprintf(out, sizeof out, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return out;
}

static const char *run(const char *path)
{
    return run_in(ctx.chunks, path);
}

static const char *SRC = "local info = debug.getinfo\n"
                         "return info(1, 'S').source .. ':' .. info(1, 'l').currentline\n";

Test(lua_chunks, same_name_and_lines_from_bytecode)
{
    const char *path = write_file("a.lua", SRC);
    char want[160];
    snprintf(want, sizeof want, "@%s:2", path);
    cr_assert_str_eq(run(path), want, "compiled");
    cr_assert_str_eq(run(path), want, "from the kept bytecode");
}

Test(lua_chunks, an_edit_keeping_the_size_is_seen)
{
    const char *path = write_file("b.lua", "return 'one'\n");
    cr_assert_str_eq(run(path), "one");
    cr_assert_str_eq(run(path), "one");
    write_file("b.lua", "return 'two'\n"); /* same size, another mtime */
    cr_assert_str_eq(run(path), "two");
}

Test(lua_chunks, full_cache_is_logged_and_files_still_load)
{
    sn_lua_chunks *small = sn_lua_chunks_new(1, 0, 0);
    cr_assert_not_null(small);
    char first[128];
    snprintf(first, sizeof first, "%s", write_file("c.lua", "return 'c'\n"));
    cr_assert_str_eq(run_in(small, first), "c");
    const char *second = write_file("d.lua", "return 'd'\n");
    cr_assert_str_eq(run_in(small, second), "d");
    cr_assert_str_eq(run_in(small, second), "d");
    cr_assert_str_eq(run_in(small, first), "c");
    sn_lua_chunks_destroy(&small);
    fflush(capture);
    rewind(capture);
    char line[512];
    int full = 0;
    while (fgets(line, sizeof line, capture))
        full += strstr(line, "compiled-Lua cache full (1 files") != NULL;
    cr_assert_eq(full, 1, "logged once");
}

Test(lua_chunks, a_missing_file_is_the_same_error)
{
    char path[160];
    snprintf(path, sizeof path, "%s/none.lua", dir);
    const char *got = run(path);
    cr_assert(strstr(got, "cannot open") != NULL, "%s", got);
}
