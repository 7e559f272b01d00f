/* The stage-node command line, through the real binary: exit codes and one-line errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs the binary with args (a shell fragment); captures stdout+stderr; returns the status. */
static int run(const char *args, char *out, size_t outlen)
{
    const char *bin = getenv("SN_BINARY");
    const char *src = getenv("SN_SOURCE_DIR");
    cr_assert_not_null(bin, "SN_BINARY is set by ctest");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", src, bin, args);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

Test(cli, version_names_the_libraries)
{
    char out[4096];
    cr_assert_eq(run("--version", out, sizeof out), 0);
    cr_assert(strstr(out, "stage-node "), "%s", out);
    cr_assert(strstr(out, "Lua 5.3"), "%s", out);
    cr_assert(strstr(out, "ZeroMQ"), "%s", out);
    cr_assert(strstr(out, "msgpack-c"), "%s", out);
    cr_assert(strstr(out, "libev"), "%s", out);
}

Test(cli, help_lists_every_option)
{
    char out[8192];
    cr_assert_eq(run("--help", out, sizeof out), 0);
    const char *opts[] = {"--name", "--listen", "--join", "--cluster", "--actor", "--threads",
                          "--preload", "--package", "--http", "--config", "--curve-secret",
                          "--curve-allow", "--insecure", "--log-level", "keygen", "status"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        cr_assert(strstr(out, opts[i]), "missing %s", opts[i]);
}

Test(cli, unknown_option_is_one_line_and_exit_2)
{
    char out[4096];
    cr_assert_eq(run("--frobnicate x.lua", out, sizeof out), 2);
    cr_assert(strstr(out, "--frobnicate"), "%s", out);
    cr_assert_eq(count_lines(out), 1, "%s", out);
}

Test(cli, missing_script_is_one_line_and_exit_2)
{
    char out[4096];
    cr_assert_eq(run("no/such/script.lua", out, sizeof out), 2);
    cr_assert(strstr(out, "no/such/script.lua"), "%s", out);
    cr_assert_eq(count_lines(out), 1, "%s", out);
}

Test(cli, non_loopback_listen_needs_curve_or_insecure)
{
    char out[4096];
    cr_assert_eq(run("--listen tcp://0.0.0.0:7999 scripts/demo.lua", out, sizeof out), 2);
    cr_assert(strstr(out, "tcp://0.0.0.0:7999"), "%s", out);
    cr_assert(strstr(out, "--insecure"), "%s", out);
    cr_assert_eq(count_lines(out), 1, "%s", out);
}

Test(cli, keygen_writes_a_keypair_and_refuses_to_overwrite)
{
    char out[4096], cmd[512];
    char dir[] = "/tmp/sn-keygen-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "keygen %s/cluster.key", dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(cmd, sizeof cmd, "%s/cluster.key.pub", dir);
    FILE *f = fopen(cmd, "r");
    cr_assert_not_null(f);
    char key[128] = "";
    cr_assert_not_null(fgets(key, sizeof key, f));
    fclose(f);
    cr_assert_eq(strcspn(key, "\n"), 40, "a Z85 public key: %s", key);
    snprintf(cmd, sizeof cmd, "keygen %s/cluster.key", dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "exists"), "%s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(cli, script_errors_exit_1)
{
    char out[8192];
    cr_assert_eq(run("tests/lua/errors/runtime_error.lua", out, sizeof out), 1);
    cr_assert(strstr(out, "runtime_error.lua:2:"), "%s", out);
    cr_assert(strstr(out, "stack traceback"), "%s", out);
}

Test(cli, demo_runs_and_exits_0)
{
    char out[8192];
    cr_assert_eq(run("scripts/demo.lua", out, sizeof out), 0);
    cr_assert(strstr(out, "main's SCORE is still 0"), "%s", out);
}

Test(cli, preload_runs_first_in_name_order)
{
    char out[8192];
    cr_assert_eq(run("--preload tests/unit/preload_fixture tests/unit/preload_fixture/check.lua.txt",
                     out, sizeof out),
                 0, "%s", out);
    cr_assert(strstr(out, "order: a b"), "%s", out);
    /* a named folder that cannot be read is a bad value: exit 2 (node.md) */
    cr_assert_eq(run("--preload no/such/dir scripts/demo.lua", out, sizeof out), 2);
    cr_assert(strstr(out, "no/such/dir"), "%s", out);
}
