/* sn_opts: the command line of node.md. */
#include "sn_error.h"
#include "sn_opts.h"

#include <criterion/criterion.h>
#include <string.h>

static int parse(sn_opts *o, char *err, int argc, char **argv)
{
    return sn_opts_parse(o, argc, argv, err, 256);
}

#define ARGV(...) ((char *[]){"stage-node", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"stage-node", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, err, ...) parse(o, err, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

Test(sn_opts, script_and_its_arguments)
{
    sn_opts o;
    char err[256];
    char *argv[] = {"stage-node", "--name", "n1", "x.lua", "--not-mine", "a", NULL};
    cr_assert_eq(parse(&o, err, 6, argv), SN_OK); /* o keeps pointers into argv */
    cr_assert_str_eq(o.script, "x.lua");
    cr_assert_str_eq(o.name, "n1");
    cr_assert_eq(o.script_nargs, 2);
    cr_assert_str_eq(o.script_args[0], "--not-mine");
    cr_assert_str_eq(o.preload, "preload");
    cr_assert_eq(o.log_level, SN_LOG_INFO);
}

Test(sn_opts, every_option_is_parsed)
{
    sn_opts o;
    char err[256];
    char *argv[] = {"stage-node", "--listen", "tcp://127.0.0.1:7400", "--join", "a:1", "--join",
                    "b:2", "--cluster", "c", "--actor", "s=f.lua:3", "--threads", "4",
                    "--preload", "p", "--package", "k", "--http", "127.0.0.1:8080", "--http-root", "www",
                    "--config", "c.lua", "--curve-secret", "s", "--curve-allow", "a", "--insecure",
                    "--log-level", "debug", NULL};
    cr_assert_eq(parse(&o, err, (int)(sizeof argv / sizeof *argv) - 1, argv), SN_OK, "%s", err);
    cr_assert_eq(o.join.n, 2);
    cr_assert_str_eq(o.join.item[1], "b:2");
    cr_assert_eq(o.threads, 4);
    cr_assert_eq(o.insecure, 1);
    cr_assert_eq(o.log_level, SN_LOG_DEBUG);
    cr_assert_str_eq(o.http_root, "www");
}

Test(sn_opts, user_errors_name_the_culprit)
{
    sn_opts o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "--bogus", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "--bogus"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "x.lua", "--threads"), SN_OK); /* after the script: its args */
    cr_assert_eq(PARSE(&o, err, "--threads"), SN_EINVAL);
    cr_assert(strstr(err, "needs a value"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "--threads", "0", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "--threads '0'"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "--log-level", "loud", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "loud"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "--actor", "nofile", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "SID=FILE"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "--actor", "s=f.lua:0", "x.lua"), SN_EINVAL);
    cr_assert_eq(PARSE(&o, err, "--join", "hostonly", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "HOST:PORT"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "--listen", "127.0.0.1:1", "x.lua"), SN_EINVAL);
    cr_assert_eq(PARSE(&o, err, "--name", ""), SN_EINVAL);
    cr_assert_eq(parse(&o, err, 1, ARGV(NULL)), SN_EINVAL);
    cr_assert(strstr(err, "nothing to run"), "%s", err);
}

/* issue 12: --listen tcp://127.0.0.1:99999 bound a random port and advertised 99999. */
Test(sn_opts, every_host_port_option_checks_its_port)
{
    sn_opts o;
    char err[256];
    const char *opts[] = {"--listen", "--advertise", "--join", "--http"};
    const char *bad[] = {"127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:-1", "127.0.0.1:",
                         "127.0.0.1:80x", "127.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
            char v[64];
            snprintf(v, sizeof v, "%s%s", i < 2 ? "tcp://" : "", bad[k]);
            cr_assert_eq(PARSE(&o, err, (char *)opts[i], v, "x.lua"), SN_EINVAL, "%s %s", opts[i],
                         v);
            cr_assert(strstr(err, opts[i]) && strstr(err, "1 to 65535"), "%s", err);
        }
        char ok[64];
        snprintf(ok, sizeof ok, "%s127.0.0.1:65535", i < 2 ? "tcp://" : "");
        cr_assert_eq(PARSE(&o, err, (char *)opts[i], ok, "x.lua"), SN_OK, "%s", err);
    }
    cr_assert_eq(PARSE(&o, err, "--listen", "ipc:///tmp/sn.sock", "x.lua"), SN_OK, "%s", err);
}

Test(sn_opts, subcommands)
{
    sn_opts o;
    char err[256];
    char *argv[] = {"stage-node", "keygen", "k", NULL};
    cr_assert_eq(parse(&o, err, 3, argv), SN_OK);
    cr_assert_eq(o.cmd, SN_CMD_KEYGEN);
    cr_assert_str_eq(o.keygen_file, "k");
    cr_assert_eq(PARSE(&o, err, "keygen"), SN_EINVAL);
    cr_assert_eq(PARSE(&o, err, "status", "--http", "127.0.0.1:9"), SN_OK);
    cr_assert_eq(o.cmd, SN_CMD_STATUS);
    cr_assert_eq(PARSE(&o, err, "status"), SN_EINVAL);
    cr_assert(strstr(err, "--http"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "-h"), SN_OK);
    cr_assert_eq(o.cmd, SN_CMD_HELP);
    cr_assert_eq(PARSE(&o, err, "--version"), SN_OK);
    cr_assert_eq(o.cmd, SN_CMD_VERSION);
}

Test(sn_opts, once_keys_is_a_set_key)
{
    sn_opts o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "x.lua"), SN_OK);
    cr_assert_eq(o.once_keys, 1000000, "the default");
    cr_assert_eq(PARSE(&o, err, "--set", "once_keys=3", "x.lua"), SN_OK, "%s", err);
    cr_assert_eq(o.once_keys, 3);
    cr_assert_eq(PARSE(&o, err, "--set", "once_keys=0", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "once_keys"), "%s", err);
}

Test(sn_opts, shutdown_is_a_set_key)
{
    sn_opts o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "x.lua"), SN_OK);
    cr_assert_eq(o.shutdown_ms, 10000, "the default");
    cr_assert_eq(PARSE(&o, err, "--set", "shutdown=2500", "x.lua"), SN_OK, "%s", err);
    cr_assert_eq(o.shutdown_ms, 2500);
    cr_assert_eq(PARSE(&o, err, "--set", "shutdown=0", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "shutdown must be a number from 100"), "%s", err);
}

Test(sn_opts, join_names_its_node_and_members_is_a_set_key)
{
    sn_opts o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "--join", "n1@host.example:7400", "x.lua"), SN_OK, "%s", err);
    cr_assert_str_eq(o.join.item[0], "n1@host.example:7400");
    cr_assert_eq(PARSE(&o, err, "--join", "@host:7400", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "NAME@HOST:PORT"), "%s", err);
    cr_assert_eq(PARSE(&o, err, "--join", "n1@host", "x.lua"), SN_EINVAL);
    cr_assert_eq(PARSE(&o, err, "--join", "host:7400@n1", "x.lua"), SN_EINVAL);
    cr_assert_eq(PARSE(&o, err, "x.lua"), SN_OK);
    cr_assert_eq(o.members, 1024, "the default");
    cr_assert_eq(PARSE(&o, err, "--set", "members=64", "x.lua"), SN_OK, "%s", err);
    cr_assert_eq(o.members, 64);
    cr_assert_eq(PARSE(&o, err, "--set", "members=0", "x.lua"), SN_EINVAL);
}

Test(sn_opts, log_format)
{
    sn_opts o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "x.lua"), SN_OK);
    cr_assert_eq(o.log_format, SN_LOG_TEXT);
    cr_assert_eq(PARSE(&o, err, "--log-format", "json", "x.lua"), SN_OK, "%s", err);
    cr_assert_eq(o.log_format, SN_LOG_JSON);
    cr_assert_eq(PARSE(&o, err, "--log-format", "yaml", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "--log-format 'yaml'"), "%s", err);
}

Test(sn_opts, bundle_limits)
{
    sn_opts o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "x.lua"), SN_OK);
    cr_assert_eq(o.viewof_max, 1 << 30);
    cr_assert_eq(o.viewof_fields, 256);
    cr_assert_eq(o.bundle_depth, 200);
    cr_assert_eq(PARSE(&o, err, "--set", "viewof_max=4096", "--set", "viewof_fields=8", "--set",
                       "bundle_depth=5", "x.lua"), SN_OK, "%s", err);
    cr_assert_eq(o.viewof_max, 4096);
    cr_assert_eq(o.viewof_fields, 8);
    cr_assert_eq(o.bundle_depth, 5);
    cr_assert_eq(PARSE(&o, err, "--set", "bundle_depth=0", "x.lua"), SN_EINVAL);
    cr_assert(strstr(err, "bundle_depth must be a number from 1 to 10000"), "%s", err);
}
