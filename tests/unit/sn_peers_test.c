/* sn_peers: an answer that cannot be encoded opens no link (it went on to the member's own
 * connection, made for a frame that could never be sent). */
#include "sn_error.h"
#include "sn_link.h"
#include "sn_members.h"
#include "sn_peers.h"
#include "sn_transport_fake.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(sn_peers, a_reply_that_cannot_be_encoded_opens_no_link)
{
    sn_fake_net *net = sn_fake_net_new();
    sn_log *log = sn_log_new(stderr, SN_LOG_ERROR); /* the encoder logs the frame refused */
    sn_link *l = sn_link_new(sn_transport_fake_new(net, "fake://a"), 1024, log);
    sn_transport *b = sn_transport_fake_new(net, "fake://b");
    cr_assert(l && b);
    sn_member m = {0};
    snprintf(m.name, sizeof m.name, "b");
    snprintf(m.endpoint, sizeof m.endpoint, "fake://b");
    enum { N = 64 }; /* 64 members of ~40 bytes: over the 1,024-byte frame limit */
    sn_wire_member v[N];
    char names[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "member-with-a-long-name-%02d", i);
        v[i] = (sn_wire_member){names[i], "fake://somewhere-far", "", 1, SN_WIRE_ALIVE, 1};
    }
    sn_wire_frame f;
    sn_wire_frame_init(&f, SN_WIRE_GOSSIP);
    f.u.gossip.node = "a";
    f.u.gossip.incarnation = 1;
    f.u.gossip.members = v;
    f.u.gossip.nmembers = N;
    cr_assert_eq(sn_peers_reply(l, &m, NULL, 0, &f), SN_ELIMIT);
    cr_assert_eq(sn_peers_reply(l, &m, "id", 2, &f), SN_ELIMIT);
    cr_assert_null(m.ctl, "a link was made for a frame that cannot be sent");
    cr_assert_eq(sn_fake_net_connects(net, "fake://b"), 0);
    f.u.gossip.nmembers = 2; /* and one that fits goes on m's link */
    cr_assert_eq(sn_peers_reply(l, &m, NULL, 0, &f), SN_OK);
    cr_assert_not_null(m.ctl);
    sn_transport_close(sn_link_transport(l), &m.ctl);
    sn_link_destroy(&l);
    sn_transport_destroy(&b);
    sn_fake_net_destroy(&net);
    sn_log_destroy(&log);
}
