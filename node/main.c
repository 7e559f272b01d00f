/* main: the stage-node command: parse the command line, then run a node or a subcommand. */
#include "sn_error.h"
#include "sn_log.h"
#include "sn_node.h"
#include "sn_opts.h"

#include <ev.h>
#include <lua.h>
#include <msgpack.h>
#include <stdio.h>
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
    default: break;
    }
    const char *later = sn_opts_unavailable(&opts);
    if (later) {
        fprintf(stderr, "stage-node: %s: not available yet in this build\n", later);
        return 2;
    }
    struct stat st;
    if (opts.script && (stat(opts.script, &st) != 0 || !S_ISREG(st.st_mode))) {
        fprintf(stderr, "stage-node: script '%s': no such file\n", opts.script);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    sn_log *log = sn_log_new(stderr, opts.log_level);
    if (!log) {
        fprintf(stderr, "stage-node: %s\n", sn_strerror(SN_ENOMEM));
        return 1;
    }
    sn_node *node = sn_node_new(&opts, log);
    int status = node ? sn_node_run(node) : 1;
    sn_node_destroy(&node);
    sn_log_destroy(&log);
    return status;
}
