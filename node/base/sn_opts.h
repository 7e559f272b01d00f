/* sn_opts: the command line of node.md, parsed into one settings record.
 * Parsing never exits; main.c decides what to print and which status to return. */
#ifndef SN_OPTS_H
#define SN_OPTS_H

#include "sn_log.h"

#include <stddef.h>

enum { SN_OPTS_MAX_LIST = 64 };

typedef enum sn_cmd {
    SN_CMD_RUN = 0, /* run a node (the default) */
    SN_CMD_HELP,
    SN_CMD_VERSION,
    SN_CMD_KEYGEN,
    SN_CMD_STATUS
} sn_cmd;

/* A list option given several times (--join, --actor, --package). Strings point into argv. */
typedef struct sn_strlist {
    const char *item[SN_OPTS_MAX_LIST];
    int n;
} sn_strlist;

/* The settings of one node. Strings point into argv (or the config file's state later). */
typedef struct sn_opts {
    sn_cmd cmd;
    const char *script;      /* SCRIPT.lua, or NULL */
    char *const *script_args; /* arguments after the script (process.args) */
    int script_nargs;
    const char *keygen_file; /* keygen FILE */
    const char *name;        /* --name, or NULL for hostname-pid */
    const char *listen;
    const char *advertise;   /* --advertise: the endpoint peers use to reach this node */
    const char *cluster;
    const char *http;
    const char *http_root;   /* --http-root DIR: files served at /app/ by --http */
    const char *config;
    const char *curve_secret;
    const char *curve_allow;
    const char *preload;     /* --preload DIR, default "preload" */
    int insecure;
    int threads;             /* 0 means: the number of cores */
    sn_log_level log_level;
    sn_log_format log_format; /* --log-format text|json */
    sn_strlist join, actor, package;
    sn_strlist stage;        /* --stage SID:key=value,... (governor limits per stage) */
    sn_strlist builtin;      /* --set index.boards=N ...: the built-in stages' limits */
    /* --set KEY=VALUE: cluster timings and limits, in ms or bytes (see sn_opts_tunable) */
    int heartbeat_ms, suspect_ms, down_ms, reply_timeout_ms, handshake_ms, join_retry_max_ms;
    int peer_queue, frame_max;
    int batch_max;           /* --set batch_max=BYTES: most bytes of a BATCH frame, 0 = none */
    int once_keys;           /* --set once_keys=N: keys stage.once remembers node-wide */
    int forget_ms;           /* a member down this long is forgotten */
    int probe;               /* members heartbeated per period when there are more */
    int link_idle_ms;        /* a connection to a member nothing was sent on this long closes */
    int shutdown_ms;         /* --set shutdown=MS: longest clean shutdown, then exit anyway */
    int members;             /* most members this node keeps (past it, new ones are refused) */
    int viewof_max;          /* --set viewof_max=BYTES: the most one bundle.viewof maps */
    int viewof_fields;       /* --set viewof_fields=N: the most fields of a viewof record */
    int bundle_depth;        /* --set bundle_depth=N: nesting bundle.json/bson convert */
    /* the curl stage (docs/node.md): ms per request, response body bytes, redirects followed,
     * requests in flight */
    int curl_timeout_ms, curl_body_max, curl_redirects, curl_requests;
    /* --set broker_*=N: the broker's limits (docs/broker.md); 0: the default */
    int broker_conns, broker_conns_listener, broker_frame, broker_message, broker_output;
    int broker_handshake_ms, broker_idle_ms;
    /* --broker-cert/--broker-key FILE: PEM certificate (chain) and key of tls:// and wss://
     * listeners; --broker-ca FILE: the CAs a TLS join verifies against (default: the system's) */
    const char *broker_cert, *broker_key, *broker_ca;
    /* the odbc library (docs/node.md): connections per data source, statements waiting per
     * data source, data sources, ms per statement, rows per batch, ms a session may idle
     * holding a connection, ms to log in */
    int odbc_pool, odbc_queue, odbc_pools, odbc_timeout_ms, odbc_batch, odbc_idle_ms;
    int odbc_login_ms, odbc_result_max, odbc_prepared;
    /* compiled Lua kept per process (lua_chunks): files (0: none kept), KiB of bytecode per
     * file, MiB in all */
    int chunk_files, chunk_file_kb, chunk_cache_mb;
} sn_opts;

/* sn_opts_parse: fills *o from argv (argv[0] is the program). On a user error returns
 * SN_EINVAL and writes a one-line message (no newline) naming the culprit to err. */
int sn_opts_parse(sn_opts *o, int argc, char *const argv[], char *err, size_t errlen);

/* sn_opts_usage: the --help text. */
const char *sn_opts_usage(void);

#endif
