/* sn_target: every row of the target table, and hierarchical matching. */
#include "sn_error.h"
#include "sn_target.h"

#include <criterion/criterion.h>
#include <string.h>

static sn_target parse_ok(const char *s)
{
    sn_target t;
    char err[256];
    cr_assert_eq(sn_target_parse(s, "me", &t, err, sizeof err), SN_OK, "%s: %s", s, err);
    return t;
}

static void parse_bad(const char *s, const char *why)
{
    sn_target t;
    char err[256];
    cr_assert_eq(sn_target_parse(s, "me", &t, err, sizeof err), SN_EINVAL, "%s", s);
    cr_assert(strstr(err, why), "%s: got '%s'", s, err);
}

Test(sn_target, every_row)
{
    sn_target t = parse_ok("hello");
    cr_assert_eq(t.mode, SN_TARGET_SELF);
    cr_assert_str_eq(t.msg, "hello");
    cr_assert_str_eq(t.stage, "");
    t = parse_ok(":hello");
    cr_assert_eq(t.mode, SN_TARGET_SYNC);
    t = parse_ok("worker:job.done");
    cr_assert_eq(t.mode, SN_TARGET_ONE);
    cr_assert_str_eq(t.stage, "worker");
    cr_assert_str_eq(t.msg, "job.done");
    t = parse_ok("*worker:tick");
    cr_assert_eq(t.mode, SN_TARGET_ALL);
    cr_assert_str_eq(t.stage, "worker");
    t = parse_ok("*tick");
    cr_assert_eq(t.mode, SN_TARGET_ALL);
    cr_assert_str_eq(t.stage, "me", "*msg: the sender's own stage");
    t = parse_ok("=worker:x");
    cr_assert_eq(t.mode, SN_TARGET_LOCAL);
    t = parse_ok("+worker:x");
    cr_assert_eq(t.mode, SN_TARGET_REMOTE);
    t = parse_ok("worker+ping");
    cr_assert_eq(t.mode, SN_TARGET_ONE);
    cr_assert_str_eq(t.stage, "worker");
    cr_assert_str_eq(t.msg, "me:ping", "sid+msg is delivered as <sender stage>:msg");
    t = parse_ok("worker:ask=answer");
    cr_assert_str_eq(t.msg, "ask");
    cr_assert_str_eq(t.reply, "answer");
    t = parse_ok("worker:main:hello");
    cr_assert_str_eq(t.stage, "worker");
    cr_assert_str_eq(t.msg, "main:hello", "the first ':' ends the stage id");
    t = parse_ok(">db.granted");
    cr_assert_eq(t.mode, SN_TARGET_LOCK);
    cr_assert_str_eq(t.lock, "db");
    cr_assert_str_eq(t.msg, "granted");
    t = parse_ok(">>a.b.cb");
    cr_assert_eq(t.mode, SN_TARGET_EXTEND);
    cr_assert_str_eq(t.lock, "a.b");
    t = parse_ok("<db.*");
    cr_assert_eq(t.mode, SN_TARGET_RELEASE);
    cr_assert_str_eq(t.lock, "db");
}

Test(sn_target, errors_say_what)
{
    parse_bad("", "empty target");
    parse_bad(":x=y", "takes no reply");
    parse_bad("w:", "empty message id");
    parse_bad(":w:x", "no stage id");
    parse_bad(":x:y", "no stage id");
    parse_bad("x=", "empty reply");
    parse_bad(">lock", "NAME.handler");
    parse_bad("+", "empty message id");
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    parse_bad(big, "longer than");
}

static void expect_chain(const char *msg, const char *const *want)
{
    size_t len = strlen(msg);
    int i = 0;
    for (; want[i]; i++) {
        cr_assert_neq(len, 0, "%s: ran out at %s", msg, want[i]);
        cr_assert_eq(len, strlen(want[i]), "%s: candidate %d", msg, i);
        cr_assert_eq(strncmp(msg, want[i], len), 0);
        len = sn_target_next(msg, len);
    }
    cr_assert_eq(len, 0, "%s: more candidates than expected", msg);
}

Test(sn_target, hierarchical_matching_order)
{
    expect_chain("stage:group.msg.cb", (const char *const[]){"stage:group.msg.cb",
                 "stage:group.msg.", "stage:group.", "stage:", NULL});
    expect_chain("hello", (const char *const[]){"hello", NULL});
    expect_chain("a.b", (const char *const[]){"a.b", "a.", NULL});
    expect_chain("my.stage:x", (const char *const[]){"my.stage:x", "my.stage:", NULL});
    expect_chain("s:", (const char *const[]){"s:", NULL});
    /* issue 13, as STAGE: '?' separates, and every ':' after the first one does */
    expect_chain("chat?user1", (const char *const[]){"chat?user1", "chat?", NULL});
    expect_chain("a:b:c", (const char *const[]){"a:b:c", "a:b:", "a:", NULL});
    expect_chain("a.b:c?d", (const char *const[]){"a.b:c?d", "a.b:c?", "a.b:", "a.", NULL});
    expect_chain("q?x:y.z", (const char *const[]){"q?x:y.z", "q?x:y.", "q?x:", NULL});
}
