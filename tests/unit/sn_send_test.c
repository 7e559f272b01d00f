/* sn_send: the one send path over a real node whose VM holds its mail (no Lua): local
 * round-robin, broadcast, a full mailbox, no route, remote instances through a fake remote
 * hook, and frames from other nodes (scope local only). */
#include "fake_vm.h"
#include "sn_actor.h"
#include "sn_error.h"
#include "sn_node.h"
#include "sn_send.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

/* ---- a VM that never handles mail: every message stays in its mailbox ---- */

static const sn_vm_ops no_vm = {.actor_open = fake_vm_open,
                                .actor_close = fake_vm_close,
                                .actor_run = fake_vm_keep_mail,
                                .worker_init = fake_vm_worker_init,
                                .worker_fini = fake_vm_worker_fini,
                                .worker_busy_for = fake_vm_busy_for,
                                .job_run = fake_vm_job};

/* ---- a fake remote: records each send ---- */

enum { MAX_SENT = 256 };

typedef struct fake_remote {
    pthread_mutex_t mu;
    int answer; /* what send returns */
    size_t n;
    struct {
        char node[64], stage[64], name[64], payload[64];
        int mode;
    } sent[MAX_SENT];
} fake_remote;

static int fake_send(void *ud, const char *node, int mode, const char *stage, const sn_msg *m,
                     const void *payload, size_t len)
{
    fake_remote *f = ud;
    pthread_mutex_lock(&f->mu);
    if (f->n < MAX_SENT) {
        snprintf(f->sent[f->n].node, 64, "%s", node);
        snprintf(f->sent[f->n].stage, 64, "%s", stage);
        snprintf(f->sent[f->n].name, 64, "%s", m->name);
        snprintf(f->sent[f->n].payload, 64, "%.*s", (int)len, (const char *)payload);
        f->sent[f->n].mode = mode;
        f->n++;
    }
    pthread_mutex_unlock(&f->mu);
    return f->answer;
}

static sn_log *log_;
static sn_opts opts;
static sn_node *node;
static fake_remote remote;

static void setup(void)
{
    log_ = sn_log_new(stderr, SN_LOG_ERROR);
    memset(&opts, 0, sizeof opts);
    opts.preload = "preload";
    opts.threads = 1;
    opts.name = "here";
    opts.stage.item[0] = "full:mailbox=1";
    opts.stage.n = 1;
    node = sn_node_new(&opts, log_, &no_vm);
    cr_assert_not_null(node);
    memset(&remote, 0, sizeof remote);
    pthread_mutex_init(&remote.mu, NULL);
    sn_node_remote r = {.send = fake_send, .ud = &remote};
    sn_node_attach(node, &r, 0);
}

static void teardown(void)
{
    sn_node_destroy(&node);
    sn_log_destroy(&log_);
    pthread_mutex_destroy(&remote.mu);
}

static uint64_t spawn(const char *stage)
{
    uint64_t id;
    cr_assert_eq(sn_node_spawn(node, stage, "x.lua", NULL, 0, &id), SN_OK);
    return id;
}

static size_t depth(uint64_t id)
{
    size_t len, peak;
    cr_assert_eq(sn_node_mailbox(node, id, &len, &peak), SN_OK);
    return len - 1; /* the start message stays too */
}

static sn_msg *template(const char *name, const char *payload)
{
    sn_msg *m = sn_msg_new(SN_MSG_SIGNAL, name, NULL, "me", payload, strlen(payload));
    cr_assert_not_null(m);
    return m;
}

static int send_to(const char *stage, sn_router_scope scope, int broadcast, size_t *queued)
{
    sn_msg *m = template("hello", "data");
    sn_send s = {.stage = stage, .scope = scope, .broadcast = broadcast, .msg = m};
    return sn_send_route(node, &s, queued); /* consumes m */
}

TestSuite(sn_send, .init = setup, .fini = teardown);

Test(sn_send, local_round_robin)
{
    uint64_t a = spawn("rr"), b = spawn("rr"), c = spawn("rr");
    for (int i = 0; i < 6; i++) {
        size_t queued = 0;
        cr_assert_eq(send_to("rr", SN_SCOPE_ALL, 0, &queued), SN_OK);
        cr_assert_eq(queued, 1);
    }
    cr_assert_eq(depth(a), 2);
    cr_assert_eq(depth(b), 2);
    cr_assert_eq(depth(c), 2);
    cr_assert_eq(remote.n, 0);
}

Test(sn_send, broadcast_reaches_every_local_and_remote_instance)
{
    uint64_t a = spawn("b"), c = spawn("b");
    cr_assert_eq(sn_router_set_remote(sn_node_router(node), "peer1", "b", 3), SN_OK);
    size_t queued = 0;
    cr_assert_eq(send_to("b", SN_SCOPE_ALL, 1, &queued), SN_OK);
    cr_assert_eq(queued, 2 + 3, "a node counts as its actors");
    cr_assert_eq(depth(a), 1);
    cr_assert_eq(depth(c), 1);
    cr_assert_eq(remote.n, 1);
    cr_assert_str_eq(remote.sent[0].node, "peer1");
    cr_assert_eq(remote.sent[0].mode, SN_WIRE_ALL);
    cr_assert_str_eq(remote.sent[0].payload, "data");
}

Test(sn_send, broadcast_has_no_fixed_cap_on_nodes)
{
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "peer%d", i);
        cr_assert_eq(sn_router_set_remote(sn_node_router(node), name, "wide", 1), SN_OK);
    }
    size_t queued = 0;
    cr_assert_eq(send_to("wide", SN_SCOPE_ALL, 1, &queued), SN_OK);
    cr_assert_eq(queued, 100);
    cr_assert_eq(remote.n, 100);
}

Test(sn_send, full_mailbox_is_skipped_then_reported)
{
    uint64_t a = spawn("full"); /* mailbox=1: one message (the start takes no slot) */
    size_t queued = 0;
    cr_assert_eq(send_to("full", SN_SCOPE_ALL, 0, &queued), SN_OK);
    cr_assert_eq(depth(a), 1);
    cr_assert_eq(send_to("full", SN_SCOPE_ALL, 0, &queued), SN_EFULL);
    cr_assert_eq(queued, 0);
    cr_assert_eq(send_to("full", SN_SCOPE_ALL, 1, &queued), SN_EFULL);
    char why[64];
    cr_assert_str_eq(sn_send_why(SN_EFULL, "full", why, sizeof why), "mailbox full");
    uint64_t b = spawn("full"); /* a second instance takes what the first cannot */
    cr_assert_eq(send_to("full", SN_SCOPE_ALL, 0, &queued), SN_OK);
    cr_assert_eq(depth(b), 1);
}

Test(sn_send, no_route)
{
    size_t queued = 7;
    cr_assert_eq(send_to("nobody", SN_SCOPE_ALL, 0, &queued), SN_ENOENT);
    cr_assert_eq(queued, 0);
    cr_assert_eq(send_to("nobody", SN_SCOPE_ALL, 1, &queued), SN_ENOENT);
    char why[64];
    cr_assert_str_eq(sn_send_why(SN_ENOENT, "nobody", why, sizeof why), "no route to nobody");
    cr_assert_str_eq(sn_send_why(SN_ECLOSED, "x", why, sizeof why), "node down");
}

Test(sn_send, to_self)
{
    uint64_t a = spawn("me");
    sn_msg *m = template("tick", "x");
    sn_send s = {.stage = "", .actor = a, .msg = m};
    size_t queued = 0;
    cr_assert_eq(sn_send_route(node, &s, &queued), SN_OK);
    cr_assert_eq(queued, 1);
    cr_assert_eq(depth(a), 1);
}

/* encode: the payload of its own for one peer (as the function cache does). */
static int encode_for(void *ud, const char *peer, sn_buf *out)
{
    (void)ud;
    if (strcmp(peer, "peer2") != 0)
        return SN_ENOENT;
    if (sn_buf_reserve(out, 6) != 0)
        return SN_ENOMEM;
    memcpy(out->data + out->len, "hashed", 6);
    out->len += 6;
    return SN_OK;
}

static int send_far(sn_router_scope scope)
{
    sn_send s = {.stage = "far", .scope = scope, .msg = template("hello", "data"),
                 .encode = encode_for};
    size_t queued = 0;
    return sn_send_route(node, &s, &queued);
}

Test(sn_send, remote_round_robin_through_the_hook)
{
    cr_assert_eq(sn_router_set_remote(sn_node_router(node), "peer1", "far", 1), SN_OK);
    cr_assert_eq(sn_router_set_remote(sn_node_router(node), "peer2", "far", 1), SN_OK);
    cr_assert_eq(send_far(SN_SCOPE_ALL), SN_OK);
    cr_assert_eq(send_far(SN_SCOPE_ALL), SN_OK);
    cr_assert_eq(remote.n, 2);
    int p1 = strcmp(remote.sent[0].node, "peer1") == 0 ? 0 : 1;
    cr_assert_str_eq(remote.sent[p1].node, "peer1");
    cr_assert_str_eq(remote.sent[p1].payload, "data");
    cr_assert_str_eq(remote.sent[1 - p1].node, "peer2");
    cr_assert_str_eq(remote.sent[1 - p1].payload, "hashed");
    cr_assert_eq(remote.sent[0].mode, SN_WIRE_ONE);
    cr_assert_str_eq(remote.sent[0].stage, "far");
    cr_assert_str_eq(remote.sent[0].name, "hello");
    cr_assert_eq(send_far(SN_SCOPE_LOCAL), SN_ENOENT, "no local instance");
    remote.answer = SN_EFULL;
    cr_assert_eq(send_far(SN_SCOPE_REMOTE), SN_EFULL);
    remote.answer = SN_ENOENT; /* the node is not alive */
    cr_assert_eq(send_far(SN_SCOPE_REMOTE), SN_ENOENT);
}

Test(sn_send, frames_from_other_nodes_stay_local)
{
    uint64_t a = spawn("mix"), b = spawn("mix");
    cr_assert_eq(sn_router_set_remote(sn_node_router(node), "peer1", "mix", 5), SN_OK);
    cr_assert_eq(sn_router_set_remote(sn_node_router(node), "peer1", "onlyfar", 5), SN_OK);
    sn_wire_message w = {.src = {.node = "peer1", .incarnation = 9, .actor = 4, .stage = "x"},
                         .dst = {.node = "here", .stage = "mix"},
                         .mode = SN_WIRE_ALL,
                         .msg_id = "hello",
                         .reply_id = "",
                         .payload = {"p", 1}};
    cr_assert_eq(sn_node_deliver(node, &w, 1), SN_OK);
    cr_assert_eq(depth(a), 1);
    cr_assert_eq(depth(b), 1);
    w.mode = SN_WIRE_ONE;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sn_node_deliver(node, &w, 0), SN_OK);
    cr_assert_eq(depth(a) + depth(b), 2 + 4);
    cr_assert_eq(remote.n, 0, "a frame from another node never goes out again");
    w.dst.stage = "onlyfar";
    cr_assert_eq(sn_node_deliver(node, &w, 1), SN_ENOENT);
    w.dst.stage = "nobody";
    cr_assert_eq(sn_node_deliver(node, &w, 1), SN_ENOENT);
    cr_assert_eq(remote.n, 0);
}

/* issue 12: at shutdown a finalizer's stage.signal reached a freed scheduler (and its
 * remote sends a freed cluster). Once the node stops, new work is refused with SN_ECLOSED
 * and counted, and nothing reaches the remote hook. */
Test(sn_send, a_stopping_node_refuses_new_work)
{
    uint64_t a = spawn("s");
    cr_assert_eq(sn_router_set_remote(sn_node_router(node), "peer1", "s", 1), SN_OK);
    sn_node_stop(node);
    size_t queued = 9;
    cr_assert_eq(send_to("s", SN_SCOPE_ALL, 1, &queued), SN_ECLOSED);
    cr_assert_eq(queued, 0);
    cr_assert_eq(remote.n, 0, "no remote send once stopping");
    sn_msg *m = template("x", "data");
    cr_assert_eq(sn_node_post(node, a, m, 1), SN_ECLOSED, "even forced");
    sn_msg_destroy(&m);
    uint64_t id;
    cr_assert_eq(sn_node_spawn(node, "s", "x.lua", NULL, 0, &id), SN_ECLOSED);
    cr_assert_eq(sn_node_lock(node, SN_LOCK_ACQUIRE, "L", a, "got", NULL, 0, 0), SN_ECLOSED);
    char why[64];
    cr_assert_str_eq(sn_send_why(SN_ECLOSED, "s", why, sizeof why), "node down");
}
