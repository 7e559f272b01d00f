/* sn_bwire: broker URIs, sizes, length-prefixed frames, the WebSocket upgrade, UTF-8. */
#include "sn_bwire.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <string.h>

Test(sn_bwire, sizes)
{
    size_t v;
    const char *e;
    cr_assert_eq(sn_bsize_parse("10k", &e, &v), SN_OK);
    cr_assert_eq(v, 10240);
    cr_assert_eq(*e, '\0');
    cr_assert_eq(sn_bsize_parse("4m:", &e, &v), SN_OK);
    cr_assert_eq(v, 4u << 20);
    cr_assert_eq(*e, ':');
    cr_assert_eq(sn_bsize_parse("123", NULL, &v), SN_OK);
    cr_assert_eq(v, 123);
    cr_assert_eq(sn_bsize_parse("k", NULL, &v), SN_EINVAL);
    cr_assert_eq(sn_bsize_parse("99999999999", NULL, &v), SN_EINVAL);
    cr_assert_eq(sn_bsize_parse("4096m", NULL, &v), SN_EINVAL);
}

Test(sn_bwire, uris)
{
    sn_buri u;
    char err[256];
    cr_assert_eq(sn_buri_parse("tcp://0.0.0.0:8081?packet=10k:4m", &u, err, sizeof err), SN_OK);
    cr_assert_eq(u.kind, SN_BURI_TCP);
    cr_assert_str_eq(u.host, "0.0.0.0");
    cr_assert_str_eq(u.port, "8081");
    cr_assert(u.packet);
    cr_assert_eq(u.in_max, 10240);
    cr_assert_eq(u.out_max, 4u << 20);
    cr_assert_eq(sn_buri_parse("tcp://h:1?packet=10k,40k", &u, err, sizeof err), SN_OK,
                 "STAGE's comma form");
    cr_assert_eq(u.out_max, 40960);
    cr_assert_eq(sn_buri_parse("tcp://h:1", &u, err, sizeof err), SN_OK);
    cr_assert(!u.packet);
    cr_assert_eq(sn_buri_parse("ws://[::1]:9000/chat?json", &u, err, sizeof err), SN_OK);
    cr_assert_eq(u.kind, SN_BURI_WS);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_str_eq(u.path, "/chat");
    cr_assert(u.json);
    cr_assert_eq(sn_buri_parse("ws://h:1", &u, err, sizeof err), SN_OK);
    cr_assert_str_eq(u.path, "/");
    cr_assert_eq(sn_buri_parse("udp://224.0.0.1:8082", &u, err, sizeof err), SN_OK);
    cr_assert_eq(u.kind, SN_BURI_UDP);
    cr_assert_eq(sn_buri_parse("http://h:1", &u, err, sizeof err), SN_EINVAL);
    cr_assert_eq(sn_buri_parse("tcp://h", &u, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "expected :port"), "%s", err);
    cr_assert_eq(sn_buri_parse("tcp://h:x", &u, err, sizeof err), SN_EINVAL);
    cr_assert_eq(sn_buri_parse("tcp://h:1?nope", &u, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "unknown option"), "%s", err);
    cr_assert_eq(sn_buri_parse("udp://h:1?packet", &u, err, sizeof err), SN_EINVAL);
    cr_assert_eq(sn_buri_parse("tcp://h:1/path", &u, err, sizeof err), SN_EINVAL);
    cr_assert_eq(sn_buri_parse("tcp://h:1?packet=3", &u, err, sizeof err), SN_EINVAL);
    cr_assert_eq(sn_buri_parse("wss://h:1/p?json", &u, err, sizeof err), SN_OK);
    cr_assert(u.tls && u.kind == SN_BURI_WS && u.json);
    cr_assert_str_eq(u.path, "/p");
    cr_assert_eq(sn_buri_parse("tls://h:1?packet=1k&ca=/x/ca.pem", &u, err, sizeof err), SN_OK);
    cr_assert(u.tls && u.kind == SN_BURI_TCP && u.packet && !u.noverify);
    cr_assert_str_eq(u.ca, "/x/ca.pem");
    cr_assert_eq(sn_buri_parse("tls://h:1?verify=none", &u, err, sizeof err), SN_OK);
    cr_assert(u.noverify);
    cr_assert_eq(sn_buri_parse("tcp://h:1?ca=/x", &u, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "tls:// and wss:// only"), "%s", err);
}

Test(sn_bwire, frames)
{
    unsigned char b[16];
    size_t f;
    sn_bframe_header(b, 5);
    cr_assert_eq(b[0], 9);
    cr_assert_eq(b[1] | b[2] | b[3], 0);
    memcpy(b + 4, "hello", 5);
    cr_assert_eq(sn_bframe_next(b, 3, 100, &f), 0, "no header yet");
    cr_assert_eq(sn_bframe_next(b, 8, 100, &f), 0, "one byte short");
    cr_assert_eq(sn_bframe_next(b, 9, 100, &f), 1);
    cr_assert_eq(f, 9);
    cr_assert_eq(sn_bframe_next(b, 16, 100, &f), 1, "more bytes behind the frame");
    cr_assert_eq(sn_bframe_next(b, 9, 8, &f), SN_ELIMIT, "over the limit, before its body");
    cr_assert_eq(f, 9);
    unsigned char small[4] = {3, 0, 0, 0};
    cr_assert_eq(sn_bframe_next(small, 4, 100, &f), SN_EPROTO);
    unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(sn_bframe_next(huge, 4, 1 << 20, &f), SN_ELIMIT);
    unsigned char empty[4];
    sn_bframe_header(empty, 0);
    cr_assert_eq(sn_bframe_next(empty, 4, 100, &f), 1, "an empty payload is a frame");
}

static const char REQ[] = "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\n"
                          "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n";

Test(sn_bwire, upgrade)
{
    sn_bws_req r;
    size_t n = strlen(REQ);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(sn_bws_parse(REQ, i, &r), 0, "incomplete at %zu", i);
    cr_assert_eq(sn_bws_parse(REQ, n, &r), (int)n);
    cr_assert_str_eq(r.path, "/chat?x=1");
    cr_assert_str_eq(r.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 section 1.3");
    char out[256];
    size_t rl = sn_bws_response(&r, out, sizeof out);
    cr_assert(rl > 0 && strstr(out, "101 Switching Protocols") &&
              strstr(out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
    cr_assert_eq(sn_bws_response(&r, out, 20), 0);
}

Test(sn_bwire, upgrade_refusals)
{
    sn_bws_req r;
    const char *post = "POST / HTTP/1.1\r\n\r\n";
    cr_assert_eq(sn_bws_parse(post, strlen(post), &r), -405);
    const char *old = "GET / HTTP/1.0\r\n\r\n";
    cr_assert_eq(sn_bws_parse(old, strlen(old), &r), -400);
    const char *plain = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(sn_bws_parse(plain, strlen(plain), &r), -426);
    const char *v8 = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    cr_assert_eq(sn_bws_parse(v8, strlen(v8), &r), -426);
    const char *nokey = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n";
    cr_assert_eq(sn_bws_parse(nokey, strlen(nokey), &r), -400);
    const char *nocolon = "GET / HTTP/1.1\r\nbroken line\r\n\r\n";
    cr_assert_eq(sn_bws_parse(nocolon, strlen(nocolon), &r), -400);
    const char *bare = "GET / HTTP/1.1\nHost: x\r\n\r\n";
    cr_assert_lt(sn_bws_parse(bare, strlen(bare), &r), 0);
}

Test(sn_bwire, utf8)
{
    cr_assert(sn_utf8_valid((const unsigned char *)"", 0));
    cr_assert(sn_utf8_valid((const unsigned char *)"plain", 5));
    cr_assert(sn_utf8_valid((const unsigned char *)"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", 9));
    cr_assert(!sn_utf8_valid((const unsigned char *)"\xff", 1));
    cr_assert(!sn_utf8_valid((const unsigned char *)"\xc3", 1), "truncated");
    cr_assert(!sn_utf8_valid((const unsigned char *)"\xc0\xaf", 2), "overlong");
    cr_assert(!sn_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3), "surrogate");
    cr_assert(!sn_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4), "past U+10FFFF");
    cr_assert(!sn_utf8_valid((const unsigned char *)"a\x80", 2), "stray continuation");
}

Test(sn_bwire, client_upgrade)
{
    sn_buri u;
    char err[256], req[512], why[160];
    cr_assert_eq(sn_buri_parse("ws://[::1]:81/room", &u, err, sizeof err), SN_OK, "%s", err);
    size_t n = sn_bws_request(&u, "dGhlIHNhbXBsZSBub25jZQ==", req, sizeof req);
    cr_assert_gt(n, 0);
    cr_assert(strstr(req, "GET /room HTTP/1.1\r\nHost: [::1]:81\r\n"), "%s", req);
    cr_assert(strstr(req, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), "%s", req);
    cr_assert_eq(sn_bws_request(&u, "k", req, 40), 0, "short room");
    /* RFC 6455 section 1.3's example key and answer */
    const char *acc = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    const char *good = "HTTP/1.1 101 Switching Protocols\r\nupgrade:  WebSocket \r\n"
                       "Connection: keep-alive, Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    cr_assert_eq(sn_bws_answer_check(good, strlen(good), acc, why, sizeof why), SN_OK, "%s", why);
    const char *status = "HTTP/1.1 200 OK\r\n\r\n";
    cr_assert_eq(sn_bws_answer_check(status, strlen(status), acc, why, sizeof why), SN_EPROTO);
    cr_assert_str_eq(why, "the server answered 'HTTP/1.1 200 OK', not 101");
    const char *s1010 = "HTTP/1.1 1010 x\r\n\r\n";
    cr_assert_eq(sn_bws_answer_check(s1010, strlen(s1010), acc, why, sizeof why), SN_EPROTO);
    const char *noup = "HTTP/1.1 101 x\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    cr_assert_eq(sn_bws_answer_check(noup, strlen(noup), acc, why, sizeof why), SN_EPROTO);
    cr_assert_str_eq(why, "the 101 answer has no 'Upgrade: websocket'");
    const char *noconn = "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
                         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    cr_assert_eq(sn_bws_answer_check(noconn, strlen(noconn), acc, why, sizeof why), SN_EPROTO);
    const char *noacc = "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    cr_assert_eq(sn_bws_answer_check(noacc, strlen(noacc), acc, why, sizeof why), SN_EPROTO);
    cr_assert_str_eq(why, "the 101 answer has no Sec-WebSocket-Accept");
    const char *wrong = "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: AAAA\r\n\r\n";
    cr_assert_eq(sn_bws_answer_check(wrong, strlen(wrong), acc, why, sizeof why), SN_EPROTO);
    cr_assert_str_eq(why, "Sec-WebSocket-Accept is 'AAAA', the key asks for "
                          "'s3pPLMBiTxaQ9kYGzzhZRbK+xOo='");
}
