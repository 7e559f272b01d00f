/* sn_opts: getopt_long over the options of node.md. Every option is parsed and checked now,
 * including those whose machinery arrives later; sn_opts_unavailable() names those. */
#include "sn_opts.h"
#include "sn_error.h"
#include "sn_limits.h"

#include <getopt.h>
#include <stdarg.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_NAME = 256, OPT_LISTEN, OPT_JOIN, OPT_CLUSTER, OPT_ACTOR, OPT_THREADS, OPT_PRELOAD,
    OPT_PACKAGE, OPT_HTTP, OPT_CONFIG, OPT_CURVE_SECRET, OPT_CURVE_ALLOW, OPT_INSECURE,
    OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_STAGE, OPT_SET, OPT_ADVERTISE, OPT_BROKER_CERT,
    OPT_BROKER_KEY, OPT_BROKER_CA, OPT_HTTP_ROOT
};

static const struct option long_options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"join", required_argument, NULL, OPT_JOIN},
    {"cluster", required_argument, NULL, OPT_CLUSTER},
    {"actor", required_argument, NULL, OPT_ACTOR},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"preload", required_argument, NULL, OPT_PRELOAD},
    {"package", required_argument, NULL, OPT_PACKAGE},
    {"http", required_argument, NULL, OPT_HTTP},
    {"http-root", required_argument, NULL, OPT_HTTP_ROOT},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"curve-secret", required_argument, NULL, OPT_CURVE_SECRET},
    {"curve-allow", required_argument, NULL, OPT_CURVE_ALLOW},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"stage", required_argument, NULL, OPT_STAGE},
    {"set", required_argument, NULL, OPT_SET},
    {"advertise", required_argument, NULL, OPT_ADVERTISE},
    {"broker-cert", required_argument, NULL, OPT_BROKER_CERT},
    {"broker-key", required_argument, NULL, OPT_BROKER_KEY},
    {"broker-ca", required_argument, NULL, OPT_BROKER_CA},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: stage-node [options] [SCRIPT.lua [ARGS...]]\n"
    "       stage-node keygen FILE              write a CurveZMQ keypair (FILE, FILE.pub)\n"
    "       stage-node status --http HOST:PORT  print the cluster as a node sees it\n"
    "\n"
    "  --name NAME          node name, unique in the cluster (default: hostname-pid)\n"
    "  --listen ENDPOINT    accept cluster peers, e.g. tcp://0.0.0.0:7400\n"
    "  --advertise ENDPOINT the endpoint peers use to reach this node (default: --listen,\n"
    "                       with a wildcard host replaced by the host name)\n"
    "  --join [NAME@]HOST:PORT  join the cluster through node NAME (with CurveZMQ, NAME\n"
    "                       picks its key; default: HOST's first label) (repeatable)\n"
    "  --cluster NAME       cluster name; nodes of different clusters never merge (default: stage)\n"
    "  --actor SID=FILE[:N] start N actors (default 1) of stage SID running FILE (repeatable)\n"
    "  --threads N          worker threads for stage.submit / thread.new (default: cores)\n"
    "  --preload DIR        run every .lua file of DIR in each new state (default: preload/)\n"
    "  --package DIR        search path for stage.load (repeatable; default: scripts/)\n"
    "  --http HOST:PORT     serve /metrics, /status.json and the dashboard page\n"
    "  --http-root DIR      with --http, serve the files of DIR at /app/\n"
    "  --config FILE        a Lua file returning a table of the same settings\n"
    "  --curve-secret FILE  encrypt and authenticate cluster traffic (CurveZMQ)\n"
    "  --curve-allow FILE   every node's public key and name, \"KEY NAME\" per line\n"
    "                       (required with --curve-secret)\n"
    "  --insecure           allow a non-loopback --listen without CurveZMQ\n"
    "  --log-level LEVEL    error|warn|info|debug (default info); logs go to stderr\n"
    "  --log-format FORMAT  text (default) or json: one JSON object per line, for collectors\n"
    "  --stage SID:K=V,...  limits of stage SID (* = every stage): budget (CPU s per\n"
    "                       message, 5), memory (64M), memory_warn (32M), mailbox (65536),\n"
    "                       mailbox_bytes (64M), restart (never|always), intensity (3),\n"
    "                       period (5 s) (repeatable)\n"
    "  --set KEY=VALUE      cluster tunables: heartbeat (1000 ms), suspect (5000 ms of\n"
    "                       silence), down (5000 ms more), reply_timeout (30000 ms),\n"
    "                       handshake (7000 ms), join_retry_max (10000 ms), peer_queue\n"
    "                       (1000 messages), frame_max (2097152 bytes), batch_max (65536\n"
    "                       bytes of frames sent together; 0: none), once_keys (1000000\n"
    "                       keys stage.once remembers), forget (3600000 ms\n"
    "                       down, then a member is forgotten), probe (8 members per\n"
    "                       heartbeat in larger clusters; 0: all), link_idle (3000 ms\n"
    "                       with nothing sent, then a control link to a member closes;\n"
    "                       0: never), shutdown (10000 ms:\n"
    "                       then the node exits without waiting any more), members (1024\n"
    "                       members at most), viewof_max (1073741824 bytes a bundle.viewof\n"
    "                       holds), viewof_fields (256 fields a record), bundle_depth (200\n"
    "                       levels bundle.json/bson convert); the built-in stages' limits:\n"
    "                       index.boards, index.keys, index.key_bytes, index.batch,\n"
    "                       route.topics, route.per_topic, ticket.categories,\n"
    "                       ticket.waiters, ticket.hold_ms, builtin.pending (100000),\n"
    "                       builtin.settle_ms (5000) (docs/stages.md); the curl stage:\n"
    "                       curl_timeout (10000 ms per request), curl_body_max (8388608\n"
    "                       bytes of response body), curl_redirects (5), curl_requests\n"
    "                       (1024 in flight); the broker's limits broker_conns (100000),\n"
    "                       broker_conns_listener (65536), broker_frame and broker_message\n"
    "                       (1048576 bytes), broker_output (4194304 bytes),\n"
    "                       broker_handshake (5000 ms), broker_idle (0 ms: none)\n"
    "                       (docs/broker.md); the odbc library: odbc_pool (8 connections\n"
    "                       per data source), odbc_queue (1024 statements waiting),\n"
    "                       odbc_pools (16 data sources), odbc_timeout (30000 ms per\n"
    "                       statement), odbc_batch (1000 rows), odbc_idle (30000 ms),\n"
    "                       odbc_login_timeout (5000 ms), odbc_result_max (16777216\n"
    "                       bytes of rows per batch), odbc_prepared (16 statements kept\n"
    "                       prepared per connection; 0: none); compiled Lua kept per\n"
    "                       process: chunk_files (256; 0: none), chunk_file_kb (4096),\n"
    "                       chunk_cache_mb (64) (repeatable)\n"
    "  --broker-cert FILE   PEM certificate (chain) of the broker's tls:// and wss://\n"
    "                       listeners; --broker-key FILE its private key (docs/broker.md)\n"
    "  --broker-ca FILE     PEM CAs a tls:// broker.join verifies the server against\n"
    "                       (default: the system's; a URI's ?ca=FILE overrides it)\n"
    "  -h, --help           show this text\n"
    "  -V, --version        show the version and the library versions\n";

const char *sn_opts_usage(void)
{
    return usage;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SN_EINVAL;
}

static int push(sn_strlist *l, const char *v, const char *opt, char *err, size_t errlen)
{
    if (l->n >= SN_OPTS_MAX_LIST)
        return fail(err, errlen, "%s given too many times (at most 64): '%s'", opt, v);
    l->item[l->n++] = v;
    return SN_OK;
}

/* --set STAGE.LIMIT=N: a limit of a built-in stage (docs/stages.md), kept as written for
 * preload/stages.lua, which reads it as process["$STAGE.LIMIT"]. 1 when v names one. */
static int builtin_limit(sn_opts *o, const char *v, int *rc, char *err, size_t errlen)
{
    static const char *const names[] = {"index.boards", "index.keys", "index.key_bytes",
                                        "index.batch", "route.topics", "route.per_topic",
                                        "ticket.categories", "ticket.waiters", "ticket.hold_ms",
                                        "builtin.pending", "builtin.settle_ms"};
    const char *eq = strchr(v, '=');
    for (size_t i = 0; eq && i < sizeof names / sizeof *names; i++) {
        if ((size_t)(eq - v) != strlen(names[i]) || strncmp(v, names[i], (size_t)(eq - v)))
            continue;
        char *end;
        long n = strtol(eq + 1, &end, 10);
        if (!eq[1] || *end || n < 1 || n > 1000000000)
            *rc = fail(err, errlen, "--set '%s': %s must be a number from 1 to 1000000000", v,
                       names[i]);
        else
            *rc = push(&o->builtin, v, "--set STAGE.LIMIT", err, errlen);
        return 1;
    }
    if (eq && (!strncmp(v, "index.", 6) || !strncmp(v, "route.", 6) || !strncmp(v, "ticket.", 7) ||
               !strncmp(v, "builtin.", 8))) {
        *rc = fail(err, errlen, "--set '%s': unknown limit; the built-in stages have index.boards, "
                   "index.keys, index.key_bytes, index.batch, route.topics, route.per_topic, "
                   "ticket.categories, ticket.waiters, ticket.hold_ms, builtin.pending, "
                   "builtin.settle_ms", v);
        return 1;
    }
    return 0;
}

/* --set KEY=VALUE: a positive integer for one of the tunables. */
static int set_tunable(sn_opts *o, const char *v, char *err, size_t errlen)
{
    static const struct {
        const char *key;
        size_t offset;
        long min, max;
    } keys[] = {
        {"heartbeat", offsetof(sn_opts, heartbeat_ms), 10, 60000},
        {"suspect", offsetof(sn_opts, suspect_ms), 10, 3600000},
        {"down", offsetof(sn_opts, down_ms), 0, 3600000},
        {"reply_timeout", offsetof(sn_opts, reply_timeout_ms), 10, 86400000},
        {"handshake", offsetof(sn_opts, handshake_ms), 10, 600000},
        {"join_retry_max", offsetof(sn_opts, join_retry_max_ms), 10, 600000},
        {"peer_queue", offsetof(sn_opts, peer_queue), 1, 10000000},
        {"frame_max", offsetof(sn_opts, frame_max), 1024, 1 << 30},
        {"batch_max", offsetof(sn_opts, batch_max), 0, 1 << 30},
        {"once_keys", offsetof(sn_opts, once_keys), 1, 1000000000},
        {"forget", offsetof(sn_opts, forget_ms), 1000, 604800000},
        {"probe", offsetof(sn_opts, probe), 0, 100000},
        {"link_idle", offsetof(sn_opts, link_idle_ms), 0, 86400000},
        {"shutdown", offsetof(sn_opts, shutdown_ms), 100, 3600000},
        {"members", offsetof(sn_opts, members), 1, 100000},
        {"viewof_max", offsetof(sn_opts, viewof_max), 1, 2147483647},
        {"viewof_fields", offsetof(sn_opts, viewof_fields), 1, 1000000},
        {"bundle_depth", offsetof(sn_opts, bundle_depth), 1, 10000},
        {"curl_timeout", offsetof(sn_opts, curl_timeout_ms), 1, 86400000},
        {"curl_body_max", offsetof(sn_opts, curl_body_max), 0, 1 << 30},
        {"curl_redirects", offsetof(sn_opts, curl_redirects), 0, 100},
        {"curl_requests", offsetof(sn_opts, curl_requests), 1, 1000000},
        {"broker_conns", offsetof(sn_opts, broker_conns), 1, 10000000},
        {"broker_conns_listener", offsetof(sn_opts, broker_conns_listener), 1, 10000000},
        {"broker_frame", offsetof(sn_opts, broker_frame), 16, 1 << 30},
        {"broker_message", offsetof(sn_opts, broker_message), 16, 1 << 30},
        {"broker_output", offsetof(sn_opts, broker_output), 1024, 1 << 30},
        {"broker_handshake", offsetof(sn_opts, broker_handshake_ms), 10, 600000},
        {"broker_idle", offsetof(sn_opts, broker_idle_ms), 0, 86400000},
        {"odbc_pool", offsetof(sn_opts, odbc_pool), 1, 1000},
        {"odbc_queue", offsetof(sn_opts, odbc_queue), 0, 10000000},
        {"odbc_pools", offsetof(sn_opts, odbc_pools), 1, 10000},
        {"odbc_timeout", offsetof(sn_opts, odbc_timeout_ms), 1, 86400000},
        {"odbc_batch", offsetof(sn_opts, odbc_batch), 1, 1000000},
        {"odbc_idle", offsetof(sn_opts, odbc_idle_ms), 10, 86400000},
        {"odbc_prepared", offsetof(sn_opts, odbc_prepared), 0, 1024},
        {"odbc_login_timeout", offsetof(sn_opts, odbc_login_ms), 1, 600000},
        {"odbc_result_max", offsetof(sn_opts, odbc_result_max), 1024, 1 << 30},
        {"chunk_files", offsetof(sn_opts, chunk_files), 0, 100000},
        {"chunk_file_kb", offsetof(sn_opts, chunk_file_kb), 1, 1 << 20},
        {"chunk_cache_mb", offsetof(sn_opts, chunk_cache_mb), 1, 1 << 16},
    };
    const char *eq = strchr(v, '=');
    for (size_t i = 0; eq && i < sizeof keys / sizeof *keys; i++) {
        if ((size_t)(eq - v) != strlen(keys[i].key) || strncmp(v, keys[i].key, (size_t)(eq - v)))
            continue;
        char *end;
        long n = strtol(eq + 1, &end, 10);
        if (!eq[1] || *end || n < keys[i].min || n > keys[i].max)
            return fail(err, errlen, "--set '%s': %s must be a number from %ld to %ld", v,
                        keys[i].key, keys[i].min, keys[i].max);
        *(int *)((char *)o + keys[i].offset) = (int)n;
        return SN_OK;
    }
    return fail(err, errlen, "--set '%s': expected KEY=VALUE with KEY one of heartbeat, suspect, "
                "down, reply_timeout, handshake, join_retry_max, peer_queue, frame_max, "
                "batch_max, once_keys, forget, probe, link_idle, shutdown, members, viewof_max, "
                "viewof_fields, bundle_depth, curl_timeout, curl_body_max, curl_redirects, curl_requests, "
                "broker_conns, broker_conns_listener, broker_frame, broker_message, "
                "broker_output, broker_handshake, broker_idle, odbc_pool, odbc_queue, odbc_pools, "
                "odbc_timeout, odbc_batch, odbc_idle, odbc_login_timeout, odbc_result_max, "
                "odbc_prepared, chunk_files, chunk_file_kb, chunk_cache_mb", v);
}

/* SID=FILE[:N] with a non-empty SID and FILE and 1 <= N <= 100000. */
static int check_actor(const char *v, char *err, size_t errlen)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || eq[1] == '\0')
        return fail(err, errlen, "--actor '%s': expected SID=FILE[:N]", v);
    const char *colon = strrchr(eq + 1, ':');
    if (colon) {
        char *end;
        long n = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || n < 1 || n > 100000)
            return fail(err, errlen, "--actor '%s': N must be a number from 1 to 100000", v);
    }
    return SN_OK;
}

/* HOST:PORT with a port from 1 to 65535. */
static int check_hostport(const char *opt, const char *v, char *err, size_t errlen)
{
    const char *colon = strrchr(v, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == v || colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return fail(err, errlen, "%s '%s': expected HOST:PORT with a port from 1 to 65535", opt,
                    v);
    return SN_OK;
}

int sn_opts_parse(sn_opts *o, int argc, char *const argv[], char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->preload = "preload";
    o->log_level = SN_LOG_INFO;
    o->heartbeat_ms = 1000;
    o->suspect_ms = 5000;
    o->down_ms = 5000;
    o->reply_timeout_ms = 30000;
    o->handshake_ms = 7000;
    o->join_retry_max_ms = 10000;
    o->peer_queue = 1000;
    o->frame_max = 2 * 1024 * 1024;
    o->batch_max = 64 * 1024;
    o->once_keys = 1000000; /* SN_ONCE_KEYS_DEFAULT */
    o->forget_ms = 3600000; /* an hour down, then forgotten (docs/cluster.md) */
    o->probe = 8;           /* members probed per period past 8 (0: all, always) */
    o->link_idle_ms = 3000; /* 3 periods: a link to a member probed every period stays */
    o->shutdown_ms = 10000;
    o->viewof_max = 1 << 30;  /* SN_VIEWOF_MAX: bytes one bundle.viewof maps */
    o->viewof_fields = 256;   /* SN_VIEWOF_FIELDS: fields of one record */
    o->bundle_depth = 200;    /* SN_BUNDLE_DEPTH: nesting bundle.json/bson convert */
    o->members = 1024;      /* members kept; a GOSSIP cannot make more sockets than this */
    o->curl_timeout_ms = 10000;         /* STAGE's curl stage default */
    o->curl_body_max = 8 * 1024 * 1024; /* a response body kept in a message */
    o->curl_redirects = 5;
    o->curl_requests = 1024;
    o->odbc_pool = 8;           /* connections per data source */
    o->odbc_queue = 1024;       /* statements waiting per data source */
    o->odbc_pools = 16;         /* data sources per node */
    o->odbc_timeout_ms = 30000; /* one statement */
    o->odbc_batch = 1000;       /* rows per answer */
    o->odbc_idle_ms = 30000;    /* an open transaction or result left idle */
    o->odbc_login_ms = 5000;
    o->odbc_result_max = 16 * 1024 * 1024; /* bytes of rows in one answer */
    o->odbc_prepared = 16;      /* statements kept prepared per connection */
    o->chunk_files = 256;       /* compiled Lua kept per process: files, */
    o->chunk_file_kb = 4096;    /* KiB of bytecode per file, */
    o->chunk_cache_mb = 64;     /* MiB in all */
    o->cluster = NULL;
    err[0] = '\0';

    int first = 1;
    if (argc > 1 && strcmp(argv[1], "keygen") == 0) {
        o->cmd = SN_CMD_KEYGEN;
        if (argc != 3)
            return fail(err, errlen, "keygen: expected exactly one FILE argument");
        o->keygen_file = argv[2];
        return SN_OK;
    }
    if (argc > 1 && strcmp(argv[1], "status") == 0) {
        o->cmd = SN_CMD_STATUS;
        first = 2;
    }

    /* '+': stop at the script, so its own arguments reach process.args untouched.
     * ':': report a missing argument distinctly from an unknown option. */
    optind = first;
    opterr = 0;
    int c;
    int r = SN_OK;
    while ((c = getopt_long(argc, argv, "+:hV", long_options, NULL)) != -1) {
        const char *v = optarg;
        switch (c) {
        case 'h': o->cmd = SN_CMD_HELP; return SN_OK;
        case 'V': o->cmd = SN_CMD_VERSION; return SN_OK;
        case OPT_NAME:
            if (!*v)
                return fail(err, errlen, "--name: the node name must not be empty");
            o->name = v;
            break;
        case OPT_LISTEN:
            if (strncmp(v, "tcp://", 6) != 0 && strncmp(v, "ipc://", 6) != 0)
                return fail(err, errlen, "--listen '%s': expected tcp://HOST:PORT", v);
            if (strncmp(v, "tcp://", 6) == 0 && (r = check_hostport("--listen", v + 6, err,
                                                                    errlen)))
                return r; /* ZeroMQ binds a random port for one out of range */
            o->listen = v;
            break;
        case OPT_ADVERTISE:
            if (strncmp(v, "tcp://", 6) != 0)
                return fail(err, errlen, "--advertise '%s': expected tcp://HOST:PORT", v);
            if ((r = check_hostport("--advertise", v + 6, err, errlen)))
                return r;
            o->advertise = v;
            break;
        case OPT_JOIN:
            if (v[0] == '@' || (strchr(v, '@') && strchr(v, '@') > strrchr(v, ':')))
                return fail(err, errlen, "--join '%s': expected NAME@HOST:PORT or HOST:PORT", v);
            if ((r = check_hostport("--join", v, err, errlen)) ||
                (r = push(&o->join, v, "--join", err, errlen)))
                return r;
            break;
        case OPT_CLUSTER:
            if (!*v)
                return fail(err, errlen, "--cluster: the cluster name must not be empty");
            o->cluster = v;
            break;
        case OPT_ACTOR:
            if ((r = check_actor(v, err, errlen)) || (r = push(&o->actor, v, "--actor", err, errlen)))
                return r;
            break;
        case OPT_THREADS: {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 1024)
                return fail(err, errlen, "--threads '%s': expected a number from 1 to 1024", v);
            o->threads = (int)n;
            break;
        }
        case OPT_PRELOAD: o->preload = v; break;
        case OPT_PACKAGE:
            if ((r = push(&o->package, v, "--package", err, errlen)))
                return r;
            break;
        case OPT_HTTP:
            if ((r = check_hostport("--http", v, err, errlen)))
                return r;
            o->http = v;
            break;
        case OPT_HTTP_ROOT: o->http_root = v; break;
        case OPT_CONFIG: o->config = v; break;
        case OPT_CURVE_SECRET: o->curve_secret = v; break;
        case OPT_CURVE_ALLOW: o->curve_allow = v; break;
        case OPT_INSECURE: o->insecure = 1; break;
        case OPT_BROKER_CERT: o->broker_cert = v; break;
        case OPT_BROKER_KEY: o->broker_key = v; break;
        case OPT_BROKER_CA: o->broker_ca = v; break;
        case OPT_LOG_LEVEL:
            if (sn_log_level_parse(v, &o->log_level) != SN_OK)
                return fail(err, errlen, "--log-level '%s': expected error, warn, info or debug", v);
            break;
        case OPT_LOG_FORMAT:
            if (sn_log_format_parse(v, &o->log_format) != SN_OK)
                return fail(err, errlen, "--log-format '%s': expected text or json", v);
            break;
        case OPT_STAGE: {
            char why[256];
            if (sn_limits_check(v, why, sizeof why) != SN_OK)
                return fail(err, errlen, "--stage '%s': %s", v, why);
            if ((r = push(&o->stage, v, "--stage", err, errlen)))
                return r;
            break;
        }
        case OPT_SET:
            if (builtin_limit(o, v, &r, err, errlen)) {
                if (r)
                    return r;
                break;
            }
            if ((r = set_tunable(o, v, err, errlen)))
                return r;
            break;
        case ':':
            return fail(err, errlen, "option '%s' needs a value", argv[optind - 1]);
        default:
            return fail(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (o->cmd == SN_CMD_STATUS) {
        if (optind < argc)
            return fail(err, errlen, "status: unexpected argument '%s'", argv[optind]);
        if (!o->http)
            return fail(err, errlen, "status: --http HOST:PORT is required");
        return SN_OK;
    }
    if (optind < argc) {
        o->script = argv[optind];
        o->script_args = argv + optind + 1;
        o->script_nargs = argc - optind - 1;
    }
    if (!o->script && o->actor.n == 0 && !o->config && !o->listen && o->join.n == 0)
        return fail(err, errlen, "nothing to run: give a SCRIPT.lua, --actor, --config, --listen "
                                 "or --join (see --help)");
    return SN_OK;
}
