/* main: the stage-node command: parse the command line, then run a node or a subcommand. */
#include "lua_config.h"
#include "sn_curve.h"
#include "sn_error.h"
#include "sn_log.h"
#include "sn_node.h"
#include "sn_opts.h"
#include "sn_statuscli.h"

#include <ev.h>
#include <lua.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zmq.h>

static void print_version(void)
{
    int zmaj, zmin, zpat;
    zmq_version(&zmaj, &zmin, &zpat);
    printf("stage-node %s\n", SN_VERSION);
    printf("  %s (%s)\n", LUA_RELEASE, "liblua5.3");
    printf("  ZeroMQ %d.%d.%d\n", zmaj, zmin, zpat);
    printf("  msgpack-c %s\n", msgpack_version());
    printf("  libev %d.%d\n", ev_version_major(), ev_version_minor());
}

/* With --config FILE: the file's settings come first, the command line's after them (so a
 * flag overrides a setting, and lists add up); the command line's script wins. Parsed
 * again as one argv, by the same parser. The strings live until exit: *keep. */
static int apply_config(sn_opts *o, int argc, char **argv, char ***keep, int *nkeep,
                        char ***comb, char *err, size_t errlen)
{
    int nflags;
    if (sn_config_argv(o->config, keep, nkeep, &nflags, err, errlen) != SN_OK)
        return SN_EINVAL;
    int script_at = o->script ? (int)(o->script_args - argv) - 1 : argc;
    int n = 0;
    char **v = calloc((size_t)(argc + *nkeep + 1), sizeof *v);
    if (!v) {
        snprintf(err, errlen, "%s", sn_strerror(SN_ENOMEM));
        return SN_ENOMEM;
    }
    v[n++] = argv[0];
    for (int i = 0; i < nflags; i++)
        v[n++] = (*keep)[i];
    for (int i = 1; i < script_at; i++)
        v[n++] = argv[i];
    if (o->script) {
        for (int i = script_at; i < argc; i++)
            v[n++] = argv[i];
    } else {
        for (int i = nflags; i < *nkeep; i++)
            v[n++] = (*keep)[i];
    }
    *comb = v;
    return sn_opts_parse(o, n, v, err, errlen);
}

int main(int argc, char **argv)
{
    sn_opts opts;
    char err[512];
    if (sn_opts_parse(&opts, argc, argv, err, sizeof err) != SN_OK) {
        fprintf(stderr, "stage-node: %s\n", err);
        return 2;
    }
    switch (opts.cmd) {
    case SN_CMD_HELP: fputs(sn_opts_usage(), stdout); return 0;
    case SN_CMD_VERSION: print_version(); return 0;
    case SN_CMD_STATUS: return sn_status_cli(opts.http, stdout, stderr);
    case SN_CMD_KEYGEN:
        if (sn_curve_keygen(opts.keygen_file, err, sizeof err) != SN_OK) {
            fprintf(stderr, "stage-node: %s\n", err);
            return 1;
        }
        printf("wrote %s (secret, keep it private) and %s.pub\n", opts.keygen_file,
               opts.keygen_file);
        return 0;
    default: break;
    }
    char **keep = NULL, **comb = NULL;
    int nkeep = 0, status = 2;
    sn_log *log = NULL;
    sn_node *node = NULL;
    struct stat st;
    if (opts.cmd == SN_CMD_RUN && opts.config &&
        apply_config(&opts, argc, argv, &keep, &nkeep, &comb, err, sizeof err) != SN_OK) {
        fprintf(stderr, "stage-node: %s\n", err);
    } else if (opts.listen && sn_curve_listen_check(opts.listen, opts.curve_secret != NULL,
                                                    opts.insecure, err, sizeof err) != SN_OK) {
        fprintf(stderr, "stage-node: %s\n", err);
    } else if (opts.curve_allow && !opts.curve_secret) {
        fprintf(stderr, "stage-node: --curve-allow needs --curve-secret\n");
    } else if (opts.script && (stat(opts.script, &st) != 0 || !S_ISREG(st.st_mode))) {
        fprintf(stderr, "stage-node: script '%s': no such file\n", opts.script);
    } else if (!(log = sn_log_new(stderr, opts.log_level))) {
        fprintf(stderr, "stage-node: %s\n", sn_strerror(SN_ENOMEM));
        status = 1;
    } else {
        setvbuf(stdout, NULL, _IOLBF, 0);
        node = sn_node_new(&opts, log);
        status = node ? sn_node_run(node) : 1;
    }
    sn_node_destroy(&node);
    sn_log_destroy(&log);
    sn_config_free(keep, nkeep);
    free(comb);
    return status;
}
