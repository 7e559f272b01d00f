/* main: the stage-node command: parse the command line, then run a node or a subcommand. */
#include "lua_actor.h"
#include "lua_chunks.h"
#include "lua_config.h"
#include "sn_broker.h"
#include "sn_builtin.h"
#include "sn_cluster.h"
#include "sn_curve.h"
#include "sn_error.h"
#include "sn_curl.h"
#include "sn_odbc.h"
#include "sn_fcache.h"
#include "sn_http.h"
#include "sn_log.h"
#include "sn_node.h"
#include "sn_opts.h"
#include "sn_statuscli.h"
#include "sn_views.h"

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
    int rc = sn_opts_parse(o, n, v, err, errlen);
    if (rc == SN_OK) /* a stage.json's "#cluster" port without keys: the node runs alone */
        o->listen = sn_config_cluster_listen(o->config, *keep, nflags, o->listen,
                                             o->curve_secret || o->insecure);
    return rc;
}

/* ---- the wiring: the node reaches the cluster and the views through these hooks ---- */

typedef struct wiring {
    sn_cluster *cluster;
    sn_views *views;
} wiring;

static void w_flush(void *ud)
{
    sn_cluster_flush(((wiring *)ud)->cluster);
}

static void w_leave(void *ud)
{
    sn_cluster_leave(((wiring *)ud)->cluster);
}

static void w_stages_changed(void *ud)
{
    sn_cluster_registry_changed(((wiring *)ud)->cluster);
}

static int w_lock_home(void *ud, const char *lock, char *home, size_t cap)
{
    return sn_cluster_lock_home(((wiring *)ud)->cluster, lock, home, cap);
}

static int w_lock_send(void *ud, const char *home, sn_lock_op op, const char *lock,
                       uint64_t actor, const char *cb, const void *data, size_t len, double ms)
{
    return sn_cluster_lock_send(((wiring *)ud)->cluster, home, op, lock, actor, cb, data,
                                len, ms);
}

static void w_lock_grant(void *ud, const char *node, uint64_t actor, const char *cb,
                         const void *data, size_t len)
{
    sn_cluster_lock_grant(((wiring *)ud)->cluster, node, actor, cb, data, len);
}

static int w_send(void *ud, const char *node, int mode, const char *stage, const sn_msg *m,
                  const void *payload, size_t len)
{
    return sn_cluster_send(((wiring *)ud)->cluster, node, mode, stage, m->name, m->reply,
                           m->src, m->src_stage ? m->src_stage : "", payload, len);
}

static int w_status_self(void *ud, char **json, size_t *len)
{
    return sn_views_status_self(((wiring *)ud)->views, json, len);
}

/* ---- the cluster's hooks: the cluster reaches the node only through these ---- */

static sn_builtin *builtins; /* frames for built-in stages held while their home starts */

static int c_deliver(void *ud, const sn_wire_message *m, int trusted)
{
    (void)ud; /* a built-in stage's home starts at its first use, off the loop thread */
    int rc = sn_builtin_deliver(builtins, m, trusted); /* SN_* here, a wire status there */
    return rc == SN_OK       ? SN_WIRE_OK
           : rc == SN_EFULL   ? SN_WIRE_MAILBOX_FULL
           : rc == SN_ECLOSED ? SN_WIRE_NODE_DOWN /* this node is stopping */
                              : SN_WIRE_NO_ROUTE;
}

static int c_post(void *ud, uint64_t actor, sn_msg *m, int force)
{
    return sn_node_post(ud, actor, m, force);
}

static void c_each_stage(void *ud, void (*fn)(const char *, size_t, void *), void *fud)
{
    sn_router_each(sn_node_router(ud), fn, fud);
}

static int c_status_self(void *ud, char **json, size_t *len)
{
    return sn_node_status_self(ud, json, len);
}

static int c_lock_at_home(void *ud, sn_lock_op op, const char *lock, const char *node,
                          uint64_t actor, const char *handler, const void *data, size_t len,
                          double ms)
{
    return sn_node_lock_at_home(ud, op, lock, node, actor, handler, data, len, ms);
}

static void c_set_node(void *ud, const char *node, const sn_wire_stage *stages, size_t n)
{
    sn_router_stage *v = n ? malloc(n * sizeof *v) : NULL;
    if (n && !v) { /* out of memory: in steps, as the router allows */
        sn_router_drop_node(sn_node_router(ud), node);
        for (size_t i = 0; i < n; i++)
            sn_router_set_remote(sn_node_router(ud), node, stages[i].stage, stages[i].actors);
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (sn_router_stage){stages[i].stage, stages[i].actors};
    if (sn_router_set_node(sn_node_router(ud), node, v, n) != SN_OK)
        sn_log_write(sn_node_log(ud), SN_LOG_ERROR, "cluster", "the registry of %s: out of "
                     "memory: some of its %zu stages have no route here", node, n);
    free(v);
}

static void c_drop_node(void *ud, const char *node)
{
    sn_router_drop_node(sn_node_router(ud), node);
}

static void c_wake(void *ud)
{
    sn_node_wake(ud);
}

/* The exit status of a start-up failure with error rc (docs/node.md): a value of the
 * command line that proves bad when used (an address that cannot be resolved or bound, a
 * file that cannot be read) is a usage error, 2; a lack of resources is 1. */
static int startup_status(int rc)
{
    return rc == SN_EINVAL || rc == SN_EIO || rc == SN_ENOENT ? 2 : 1;
}

/* Makes the node and what main attaches to it (cluster, views, HTTP), runs it, and frees it
 * all. Returns the exit status. */
static int run_node(const sn_opts *o, sn_log *log)
{
    int status = 1, err;
    sn_lua_ctx ctx = {0};
    wiring w = {0};
    sn_http *http = NULL;
    sn_node *node = NULL;
    sn_vm_ops vm;
    sn_lua_actor_ops(&ctx, &vm);
    ctx.fcache = sn_fcache_new();
    if (o->chunk_files > 0)
        ctx.chunks = sn_lua_chunks_new(o->chunk_files, (size_t)o->chunk_file_kb << 10,
                                       (size_t)o->chunk_cache_mb << 20);
    if (!ctx.fcache || (o->chunk_files > 0 && !ctx.chunks)) {
        sn_fcache_destroy(&ctx.fcache);
        sn_lua_chunks_destroy(&ctx.chunks);
        sn_log_write(log, SN_LOG_ERROR, NULL, "cannot create the node: %s",
                     sn_strerror(SN_ENOMEM));
        return 1;
    }
    if (!(node = sn_node_new(o, log, &vm)))
        goto done;
    if (!(ctx.broker = sn_broker_new(node, log, o))) /* logged */
        goto done;
    if (!(builtins = sn_builtin_new(node, sn_node_loop(node))))
        goto done;
    if (o->listen || o->join.n) {
        sn_cluster_hooks hooks = {.ud = node, .deliver = c_deliver, .post = c_post,
                                  .each_stage = c_each_stage, .status_self = c_status_self,
                                  .lock_at_home = c_lock_at_home, .set_node = c_set_node,
                                  .drop_node = c_drop_node, .wake = c_wake};
        w.cluster = sn_cluster_new(o, sn_node_loop(node), sn_node_name(node), log, &hooks, &err);
        if (!w.cluster) {
            status = startup_status(err);
            goto done;
        }
        ctx.cluster = w.cluster;
    }
    sn_curl_limits cl = {.timeout_ms = o->curl_timeout_ms, .body_max = o->curl_body_max,
                         .redirects = o->curl_redirects, .requests = o->curl_requests};
    if (!(ctx.curl = sn_curl_new(sn_node_cmdloop(node), log, &cl)))
        goto done;
    sn_odbc_limits ol = {.pool = o->odbc_pool, .queue = o->odbc_queue, .pools = o->odbc_pools,
                         .timeout_ms = o->odbc_timeout_ms, .batch = o->odbc_batch,
                         .idle_ms = o->odbc_idle_ms, .login_ms = o->odbc_login_ms,
                         .result_max = o->odbc_result_max, .prepared = o->odbc_prepared};
    if (!(ctx.odbc = sn_odbc_new(sn_node_cmdloop(node), log, &ol)))
        goto done;
    if (!(w.views = sn_views_new(node, w.cluster, ctx.fcache)))
        goto done;
    sn_views_set_broker(w.views, ctx.broker);
    if (o->http) {
        sn_http_handlers h = {.metrics = sn_views_metrics, .status = sn_views_status,
                              .ud = w.views, .root = o->http_root};
        http = sn_http_new(o->http, &h, log, &err);
        if (!http) {
            sn_log_write(log, SN_LOG_ERROR, NULL, "cannot serve HTTP on %s: %s", o->http,
                         sn_strerror(err));
            status = startup_status(err);
            goto done;
        }
    }
    sn_node_remote r = {.status_self = w_status_self, .ud = &w};
    if (w.cluster) {
        r.flush = w_flush;
        r.leave = w_leave;
        r.stages_changed = w_stages_changed;
        r.lock_home = w_lock_home;
        r.lock_send = w_lock_send;
        r.lock_grant = w_lock_grant;
        r.send = w_send;
    }
    sn_node_attach(node, &r, w.cluster || http); /* a listener serves until a signal */
    status = sn_node_run(node);
done:
    sn_http_destroy(&http); /* first: its thread reads the rest */
    if (node)
        sn_node_stop(node); /* no worker sends through the cluster after this */
    sn_curl_destroy(&ctx.curl); /* after the workers, before the loop goes */
    sn_odbc_destroy(&ctx.odbc); /* after the workers: no job is submitted any more */
    sn_cluster_destroy(&w.cluster);
    sn_builtin_destroy(&builtins); /* after the cluster: nothing delivers any more */
    sn_broker_destroy(&ctx.broker); /* the views read it until the peers and HTTP are gone */
    sn_node_destroy(&node);
    sn_views_destroy(&w.views);
    sn_fcache_destroy(&ctx.fcache);
    sn_lua_chunks_destroy(&ctx.chunks); /* after the node: no state loads a file any more */
    return status;
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
    struct stat st;
    if (opts.cmd == SN_CMD_RUN && opts.config &&
        apply_config(&opts, argc, argv, &keep, &nkeep, &comb, err, sizeof err) != SN_OK) {
        fprintf(stderr, "stage-node: %s\n", err);
    } else if ((opts.listen || opts.join.n) &&
               sn_curve_listen_check(opts.listen ? opts.listen : opts.join.item[0],
                                     opts.curve_secret != NULL, opts.insecure, err,
                                     sizeof err) != SN_OK) {
        fprintf(stderr, "stage-node: %s\n", err);
    } else if (opts.curve_allow && !opts.curve_secret) {
        fprintf(stderr, "stage-node: --curve-allow needs --curve-secret\n");
    } else if (opts.curve_secret && !opts.curve_allow) {
        fprintf(stderr, "stage-node: --curve-secret needs --curve-allow FILE: every node's "
                "public key and name, \"KEY NAME\" per line\n");
    } else if (opts.script && (stat(opts.script, &st) != 0 || !S_ISREG(st.st_mode))) {
        fprintf(stderr, "stage-node: script '%s': no such file\n", opts.script);
    } else if (!(log = sn_log_new(stderr, opts.log_level))) {
        fprintf(stderr, "stage-node: %s\n", sn_strerror(SN_ENOMEM));
        status = 1;
    } else {
        setvbuf(stdout, NULL, _IOLBF, 0);
        sn_log_set_format(log, opts.log_format);
        if (opts.insecure)
            sn_log_write(log, SN_LOG_WARN, "security", "INSECURE MODE: cluster traffic is "
                         "neither encrypted nor authenticated; anyone who reaches %s can join, "
                         "send data (never code) and move members' states. For development "
                         "only: use --curve-secret and --curve-allow (docs/security.md)",
                         opts.listen ? opts.listen : "this node");
        status = run_node(&opts, log);
    }
    sn_log_destroy(&log);
    sn_config_free(keep, nkeep);
    free(comb);
    return status;
}
