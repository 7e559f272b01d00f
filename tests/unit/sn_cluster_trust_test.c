/* sn_cluster's trust rules (issue 12) over the in-memory transport: a frame's claimed source
 * must be the node its connection is authenticated as; gossip moves a member's state, never
 * its endpoint; lock frames cannot reach a local actor or be relayed; frames from an
 * unauthenticated connection carry data only; members are bounded. Mallory is a bare
 * transport that writes frames by hand, authenticated (as "m") or not. */
#include "sn_cluster.h"
#include "sn_error.h"
#include "sn_gate.h"
#include "sn_transport_fake.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N = 3 };

typedef struct tnode {
    char name[32], ep[64], join[64];
    sn_opts o;
    sn_cluster *c;
    int delivered, delivered_trusted, posts, posts_untrusted, locks;
    char lock_node[64];
} tnode;

static sn_fake_net *net;
static sn_log *lg;
static double clock_s = 1000.0;
static tnode nodes[N];
static int members_max;
static sn_transport *mallory;
static sn_conn *to_a;

static double hook_now(void *ud)
{
    (void)ud;
    return clock_s;
}

static int hook_post(void *ud, uint64_t actor, sn_msg *m, int force)
{
    (void)actor, (void)force;
    tnode *t = ud;
    t->posts++;
    if (m->flags & SN_MSG_F_UNTRUSTED) t->posts_untrusted++;
    sn_msg_destroy(&m);
    return SN_OK;
}

static int hook_deliver(void *ud, const sn_wire_message *m, int trusted)
{
    (void)m;
    tnode *t = ud;
    t->delivered++;
    t->delivered_trusted += trusted != 0;
    return SN_WIRE_OK;
}

static void hook_each_stage(void *ud, void (*fn)(const char *, size_t, void *), void *fud)
{
    (void)ud;
    fn("s", 1, fud);
}

static int hook_status_self(void *ud, char **json, size_t *len)
{
    (void)ud;
    *json = strdup("{}");
    *len = 2;
    return SN_OK;
}

static int hook_lock_at_home(void *ud, sn_lock_op op, const char *lock, const char *node,
                             uint64_t actor, const char *handler, const void *data, size_t len,
                             double ms)
{
    (void)op, (void)lock, (void)actor, (void)handler, (void)data, (void)len, (void)ms;
    tnode *t = ud;
    t->locks++;
    snprintf(t->lock_node, sizeof t->lock_node, "%s", node);
    return SN_OK;
}

static void hook_set_node(void *ud, const char *node, const sn_wire_stage *stages, size_t n)
{
    (void)ud, (void)node, (void)stages, (void)n;
}

static void hook_drop_node(void *ud, const char *node)
{
    (void)ud, (void)node;
}

static void hook_wake(void *ud)
{
    (void)ud;
}

static void setup(void)
{
    net = sn_fake_net_new();
    lg = sn_log_new(stderr, SN_LOG_ERROR);
    members_max = 0;
    cr_assert_not_null(net);
}

static void teardown(void)
{
    for (int i = 0; i < N; i++)
        sn_cluster_destroy(&nodes[i].c);
    sn_transport_destroy(&mallory);
    to_a = NULL;
    sn_fake_net_destroy(&net);
    sn_log_destroy(&lg);
}

TestSuite(sn_cluster_trust, .init = setup, .fini = teardown);

static void start(int i, const char *name, const char *join)
{
    tnode *t = &nodes[i];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->ep, sizeof t->ep, "fake://%s", name);
    t->o.heartbeat_ms = 100;
    t->o.suspect_ms = 500;
    t->o.down_ms = 500;
    t->o.forget_ms = 3000;
    t->o.reply_timeout_ms = 60000;
    t->o.handshake_ms = 1000;
    t->o.join_retry_max_ms = 1000;
    t->o.peer_queue = 1000;
    t->o.frame_max = 2 * 1024 * 1024;
    t->o.cluster = "test";
    t->o.members = members_max;
    t->o.listen = t->ep;
    if (join) {
        snprintf(t->join, sizeof t->join, "%s", join);
        t->o.join.item[0] = t->join;
        t->o.join.n = 1;
    }
    sn_cluster_hooks h = {.ud = t,
                          .deliver = hook_deliver,
                          .post = hook_post,
                          .each_stage = hook_each_stage,
                          .status_self = hook_status_self,
                          .lock_at_home = hook_lock_at_home,
                          .set_node = hook_set_node,
                          .drop_node = hook_drop_node,
                          .wake = hook_wake,
                          .now = hook_now};
    int err;
    t->c = sn_cluster_new_on(sn_transport_fake_new_as(net, t->ep, name), t->ep, &t->o, NULL, name,
                             lg, &h, &err);
    cr_assert_not_null(t->c, "start %s: %s", name, sn_strerror(err));
}

static void pump(void)
{
    for (int round = 0; round < 6; round++)
        for (int i = 0; i < N; i++)
            if (nodes[i].c) sn_cluster_poll(nodes[i].c);
}

static void run(double s)
{
    for (double t = 0; t < s - 1e-9; t += 0.1) {
        clock_s += 0.1;
        for (int i = 0; i < N; i++)
            if (nodes[i].c) sn_cluster_tick(nodes[i].c);
        pump();
    }
}

/* a and b, joined; mallory connected to a, authenticated as as (NULL: not at all). */
static void two_and_mallory(const char *as)
{
    start(0, "a", NULL);
    start(1, "b", "fake://a");
    run(0.5);
    mallory = as ? sn_transport_fake_new_as(net, "fake://evil", as)
                 : sn_transport_fake_new(net, "fake://evil");
    cr_assert_not_null(mallory);
    cr_assert_eq(sn_transport_connect(mallory, "fake://a", NULL, &to_a), SN_OK);
}

static void forge(const sn_wire_frame *f)
{
    sn_buf b;
    sn_buf_init(&b);
    char err[200];
    cr_assert_eq(sn_wire_encode(f, NULL, &b, err, sizeof err), SN_OK, "%s", err);
    cr_assert_eq(sn_transport_send(mallory, to_a, b.data, b.len), SN_OK);
    sn_buf_fini(&b);
    pump();
}

static const char *view_of(int i, const char *name, char *endpoint, size_t cap)
{
    static char state[16];
    sn_member_view *v;
    size_t n = sn_cluster_members(nodes[i].c, &v);
    snprintf(state, sizeof state, "absent");
    for (size_t k = 0; k < n; k++) {
        if (strcmp(v[k].name, name) == 0) {
            snprintf(state, sizeof state, "%s", v[k].state);
            if (endpoint) snprintf(endpoint, cap, "%s", v[k].endpoint);
        }
    }
    sn_cluster_members_free(v, n);
    return state;
}

static uint64_t refused(int i, sn_gate_reason why)
{
    sn_cluster_stats st;
    sn_cluster_stats_get(nodes[i].c, &st);
    return st.refused_by[why];
}

static uint64_t inc_of_b(void)
{
    return sn_cluster_incarnation(nodes[1].c);
}

Test(sn_cluster_trust, a_forged_leave_does_not_move_the_member)
{
    two_and_mallory("m");
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_LEAVE);
    f.u.leave.node = "b";
    f.u.leave.incarnation = inc_of_b();
    forge(&f);
    cr_assert_str_eq(view_of(0, "b", NULL, 0), "alive", "a LEAVE claimed for b was believed");
    cr_assert_eq(refused(0, SN_GATE_IDENTITY), 1);
}

Test(sn_cluster_trust, a_forged_sequence_number_does_not_block_the_member)
{
    two_and_mallory("m");
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_MESSAGE);
    f.u.message.src =
        (sn_wire_addr){.node = "b", .incarnation = inc_of_b(), .actor = 1, .stage = "x"};
    f.u.message.dst = (sn_wire_addr){.node = "a", .stage = "s"};
    f.u.message.msg_id = "forged";
    f.u.message.seq = UINT64_MAX;
    forge(&f);
    cr_assert_eq(nodes[0].delivered, 0, "a MESSAGE claimed for b was delivered");
    cr_assert_eq(sn_cluster_send(nodes[1].c, "a", SN_WIRE_ONE, "s", "real", NULL, 1, "x", "p", 1),
                 SN_OK);
    sn_cluster_flush(nodes[1].c);
    pump();
    cr_assert_eq(nodes[0].delivered, 1, "b's own message was dropped as a duplicate");
    cr_assert_eq(nodes[0].delivered_trusted, 1, "b is authenticated: its message is trusted");
}

Test(sn_cluster_trust, a_forged_registry_is_refused)
{
    two_and_mallory("m");
    sn_wire_stage st = {.stage = "evil", .actors = 1000};
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_REGISTRY);
    f.u.registry.node = "b";
    f.u.registry.incarnation = inc_of_b();
    f.u.registry.version = UINT64_MAX;
    f.u.registry.stages = &st;
    f.u.registry.nstages = 1;
    forge(&f);
    cr_assert_eq(refused(0, SN_GATE_IDENTITY), 1, "a REGISTRY claimed for b was applied");
}

Test(sn_cluster_trust, gossip_never_moves_an_endpoint)
{
    /* even from an authenticated member (here: mallory holds b's neighbour's key, "m" is
     * accepted as the gossip's own sender) */
    two_and_mallory("m");
    sn_wire_member b = {.name = "b",
                        .endpoint = "fake://evil",
                        .http = "",
                        .incarnation = inc_of_b() + 1,
                        .state = SN_WIRE_ALIVE,
                        .version = 9};
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_GOSSIP);
    f.u.gossip.node = "m";
    f.u.gossip.incarnation = 1;
    f.u.gossip.members = &b;
    f.u.gossip.nmembers = 1;
    forge(&f);
    char ep[64] = "";
    view_of(0, "b", ep, sizeof ep);
    cr_assert_str_eq(ep, "fake://b", "gossip moved b's endpoint to %s", ep);
    run(0.5);
    cr_assert_str_eq(view_of(0, "b", NULL, 0), "alive");
}

Test(sn_cluster_trust, a_lock_request_for_nobody_never_reaches_the_home)
{
    two_and_mallory(NULL); /* no CURVE: nothing says who sent it */
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_LOCK_ACQUIRE);
    f.u.lock.lock = "l";
    f.u.lock.addr = (sn_wire_addr){.node = "", .actor = 1};
    f.u.lock.handler = "evil";
    f.u.lock.request = 1;
    forge(&f);
    cr_assert_eq(nodes[0].locks, 0,
                 "an ACQUIRE for addr.node \"\" reached the home: its grant "
                 "would go to a local actor");
    f.u.lock.addr.node = "nobody";
    forge(&f);
    cr_assert_eq(nodes[0].locks, 0, "an ACQUIRE for a non-member reached the home");
    cr_assert_eq(refused(0, SN_GATE_LOCK), 2);
}

Test(sn_cluster_trust, a_lock_request_claimed_for_a_member_is_refused)
{
    two_and_mallory("m");
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_LOCK_ACQUIRE);
    f.u.lock.lock = "l";
    f.u.lock.addr = (sn_wire_addr){.node = "b", .incarnation = inc_of_b(), .actor = 1};
    f.u.lock.handler = "evil";
    f.u.lock.request = 1;
    forge(&f);
    cr_assert_eq(nodes[0].locks, 0, "the home would relay the grant to b as if from itself");
    cr_assert_eq(refused(0, SN_GATE_IDENTITY), 1);
}

Test(sn_cluster_trust, a_grant_for_no_request_is_refused)
{
    two_and_mallory(NULL);
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_LOCK_GRANT);
    f.u.lock.lock = "";
    f.u.lock.addr = (sn_wire_addr){.node = "a", .actor = 7};
    f.u.lock.handler = "h";
    f.u.lock.payload = (sn_wire_bytes){"\x01\x91\xc3", 3};
    forge(&f);
    cr_assert_eq(nodes[0].posts, 0, "a grant nobody asked for was posted to actor 7");
    cr_assert_eq(refused(0, SN_GATE_LOCK), 1);
}

Test(sn_cluster_trust, unauthenticated_frames_carry_data_only)
{
    two_and_mallory(NULL);
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_MESSAGE);
    f.u.message.src = (sn_wire_addr){.node = "b", .actor = 1, .stage = "x"};
    f.u.message.dst = (sn_wire_addr){.node = "a", .stage = "s"};
    f.u.message.msg_id = "m";
    forge(&f);
    cr_assert_eq(nodes[0].delivered, 1);
    cr_assert_eq(nodes[0].delivered_trusted, 0, "an unauthenticated MESSAGE may carry code");
}

Test(sn_cluster_trust, gossip_of_many_members_is_bounded)
{
    members_max = 20;
    two_and_mallory("m");
    enum { FAKES = 1500 };
    sn_wire_member *v = calloc(FAKES, sizeof *v);
    char(*names)[16] = calloc(FAKES, sizeof *names);
    char(*eps)[32] = calloc(FAKES, sizeof *eps);
    for (int i = 0; i < FAKES; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        snprintf(eps[i], sizeof eps[i], "fake://f%d", i);
        v[i] = (sn_wire_member){.name = names[i],
                                .endpoint = eps[i],
                                .http = "",
                                .incarnation = 1,
                                .state = SN_WIRE_ALIVE,
                                .version = 1};
    }
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_GOSSIP);
    f.u.gossip.node = "m";
    f.u.gossip.incarnation = 1;
    f.u.gossip.members = v;
    f.u.gossip.nmembers = FAKES;
    sn_wire_limits lim;
    sn_wire_limits_init(&lim);
    sn_buf b;
    sn_buf_init(&b);
    char err[200];
    cr_assert_eq(sn_wire_encode(&f, &lim, &b, err, sizeof err), SN_OK, "%s", err);
    cr_assert_eq(sn_transport_send(mallory, to_a, b.data, b.len), SN_OK);
    sn_buf_fini(&b);
    pump();
    sn_member_view *mv;
    size_t n = sn_cluster_members(nodes[0].c, &mv);
    sn_cluster_members_free(mv, n);
    cr_assert_leq(n, 20, "a keeps %zu members", n);
    cr_assert_gt(refused(0, SN_GATE_MEMBERS), 0);
    size_t opened = 0;
    for (int i = 0; i < FAKES; i++)
        opened += sn_fake_net_connects(net, eps[i]);
    cr_assert_leq(opened, 19, "a opened %zu connections for hearsay", opened);
    cr_assert_str_eq(view_of(0, "b", NULL, 0), "alive");
    free(v);
    free(names);
    free(eps);
}

Test(sn_cluster_trust, bad_frame_log_lines_are_rate_limited)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    cr_assert_not_null(mem);
    sn_log_destroy(&lg);
    lg = sn_log_new(mem, SN_LOG_WARN);
    two_and_mallory("m");
    for (int i = 0; i < 200; i++) { /* malformed, forged, and ERROR frames a peer can send */
        cr_assert_eq(sn_transport_send(mallory, to_a, "\xc1\x01\x06\xff", 4), SN_OK);
        sn_wire_frame f;
        sn_wire_frame_init(&f, SN_WIRE_LEAVE);
        f.u.leave.node = "b";
        forge(&f);
        sn_wire_frame_init(&f, SN_WIRE_ERROR);
        f.u.error.code = 5;
        f.u.error.text = "forged";
        forge(&f);
    }
    sn_cluster_destroy(&nodes[0].c); /* flushes the summary */
    fflush(mem);
    int lines = 0;
    for (char *p = text; p && (p = strchr(p, '\n')); p++)
        lines++;
    cr_assert_leq(lines, 3 * SN_GATE_LOGS_PER_SECOND + 3, "%d log lines for 600 bad frames",
                  lines);
    cr_assert(strstr(text, "more refused frames not logged"), "%s", text);
    sn_log_destroy(&lg);
    fclose(mem);
    free(text);
    lg = sn_log_new(stderr, SN_LOG_ERROR);
}

static uint64_t inc_seen(int i, const char *name)
{
    sn_member_view *v;
    size_t n = sn_cluster_members(nodes[i].c, &v);
    uint64_t inc = 0;
    for (size_t k = 0; k < n; k++)
        if (strcmp(v[k].name, name) == 0)
            inc = v[k].incarnation;
    sn_cluster_members_free(v, n);
    return inc;
}

/* Gossip no longer carries a restart (it could move an endpoint), so a restarted member whose
 * greeting was lost is learned from its own heartbeats: they make us greet it. */
Test(sn_cluster_trust, a_restart_whose_greeting_was_lost_is_learned_from_its_heartbeats)
{
    start(0, "a", NULL);
    start(1, "b", "fake://a");
    start(2, "c", "fake://a");
    run(1.0);
    sn_cluster_destroy(&nodes[1].c);
    usleep(5);
    sn_fake_net_cut_link(net, "fake://b", "fake://a", 1); /* b's HELLO to a is lost */
    start(1, "b", "fake://c");
    run(0.3);
    uint64_t fresh = sn_cluster_incarnation(nodes[1].c);
    cr_assert_eq(inc_seen(2, "b"), fresh, "c learned the restart from b's greeting");
    cr_assert_neq(inc_seen(0, "b"), fresh);
    sn_fake_net_cut_link(net, "fake://b", "fake://a", 0);
    run(1.0);
    cr_assert_eq(inc_seen(0, "b"), fresh, "a never learned b's new incarnation");
    cr_assert_str_eq(view_of(0, "b", NULL, 0), "alive");
}
