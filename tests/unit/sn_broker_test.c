/* sn_broker: the event payload read by the Lua side, the remote operation payload, the ids. */
#include "sn_broker.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(sn_broker, tags)
{
    uint32_t t = sn_broker_tag_of("node-a");
    cr_assert(t > 0 && t < (1u << 20));
    cr_assert_eq(sn_broker_tag_of("node-a"), t, "stable");
    cr_assert_eq(sn_broker_id_tag((uint64_t)t << 32 | 77), t);
    cr_assert(((uint64_t)0xFFFFF << 32 | 0xFFFFFFFFu) < (1ull << 53), "ids stay exact doubles");
}

Test(sn_broker, event_read_bounds)
{
    sn_msg *m = sn_msg_new(SN_MSG_BROKER, "data", NULL, NULL, "\x01", 1);
    sn_broker_event ev;
    cr_assert_eq(sn_broker_event_read(m, &ev), SN_EPROTO, "too short");
    sn_msg_destroy(&m);
    unsigned char p[64] = {0};
    p[0] = SN_BROKER_F_TEXT;
    p[13] = 200; /* a peer address longer than the message */
    m = sn_msg_new(SN_MSG_BROKER, "data", NULL, NULL, p, 20);
    cr_assert_eq(sn_broker_event_read(m, &ev), SN_EPROTO, "peer length past the end");
    sn_msg_destroy(&m);
    memset(p, 0, sizeof p);
    p[0] = SN_BROKER_F_TEXT;
    p[13] = 2; /* peer "ab", local "", then "xyz" */
    memcpy(p + 14, "ab", 2);
    p[16] = 0;
    memcpy(p + 17, "xyz", 3);
    m = sn_msg_new(SN_MSG_BROKER, "data", NULL, NULL, p, 20);
    m->handle = 99;
    cr_assert_eq(sn_broker_event_read(m, &ev), SN_OK);
    cr_assert_eq(ev.socket, 99);
    cr_assert_eq(ev.flags, SN_BROKER_F_TEXT);
    cr_assert_eq(ev.peer_len, 2);
    cr_assert(!memcmp(ev.peer, "ab", 2));
    cr_assert_null(ev.local);
    cr_assert_eq(ev.len, 3);
    cr_assert(!memcmp(ev.data, "xyz", 3));
    sn_msg_destroy(&m);
    m = sn_msg_new(SN_MSG_SIGNAL, "data", NULL, NULL, p, 20);
    cr_assert_eq(sn_broker_event_read(m, &ev), SN_EPROTO, "not a broker message");
    sn_msg_destroy(&m);
}

Test(sn_broker, remote_payload)
{
    void *p;
    size_t n;
    cr_assert_eq(sn_broker_remote_pack(SN_BROKER_COMMIT, 5, SN_BROKER_F_TEXT, 0, "hi", 2, "ab", 2,
                                       &p, &n), SN_OK);
    cr_assert_eq(n, 19 + 2 + 2);
    cr_assert_eq(((unsigned char *)p)[0], SN_BROKER_COMMIT);
    free(p);
    unsigned char bad[19] = {0};
    cr_assert_eq(sn_broker_remote_run(NULL, bad, sizeof bad), SN_EPROTO, "op 0");
    bad[0] = 200;
    cr_assert_eq(sn_broker_remote_run(NULL, bad, sizeof bad), SN_EPROTO, "unknown op");
    cr_assert_eq(sn_broker_remote_run(NULL, bad, 5), SN_EPROTO, "short");
    bad[0] = SN_BROKER_COMMIT;
    bad[18] = 10; /* an address longer than what follows */
    cr_assert_eq(sn_broker_remote_run(NULL, bad, sizeof bad), SN_EPROTO, "address past the end");
    cr_assert_str_eq(sn_broker_reason_name(SN_BCLOSE_SLOW), "slow consumer");
    cr_assert_str_eq(sn_broker_reason_name(SN_BCLOSE_N), "?");
}

/* A FRAMES event: the whole frames one read brought, each handed out in turn; a frame cut
 * short ends the walk rather than reading past the data. */
Test(sn_broker, frames_next)
{
    unsigned char d[64];
    size_t n = 0;
    const char *parts[] = {"one", "", "three!"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        sn_bframe_header(d + n, l);
        memcpy(d + n + SN_BFRAME_HEADER, parts[i], l);
        n += SN_BFRAME_HEADER + l;
    }
    sn_broker_event ev = {.flags = SN_BROKER_F_FRAMES, .data = d, .len = n};
    size_t pos = 0;
    const void *p;
    size_t len;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sn_broker_frames_next(&ev, &pos, &p, &len), 1, "frame %d", i);
        cr_assert_eq(len, strlen(parts[i]));
        cr_assert(!memcmp(p, parts[i], len));
    }
    cr_assert_eq(sn_broker_frames_next(&ev, &pos, &p, &len), 0, "the end");
    sn_bframe_header(d + n, 10); /* announces 10 bytes, 2 follow */
    ev.len = n + SN_BFRAME_HEADER + 2;
    cr_assert_eq(sn_broker_frames_next(&ev, &pos, &p, &len), 0, "cut short");
    cr_assert_eq(pos, n);
}
