/* sn_bjson: JSON text <-> MessagePack for ?json WebSocket sockets. */
#include "sn_bjson.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <string.h>

static void round_trip(const char *json, const char *want)
{
    sn_buf mp, back;
    sn_buf_init(&mp);
    sn_buf_init(&back);
    char err[128];
    cr_assert_eq(sn_bjson_to_mpack(json, strlen(json), &mp, err, sizeof err), SN_OK, "%s", err);
    cr_assert_eq(sn_bjson_from_mpack(mp.data, mp.len, &back, err, sizeof err), SN_OK, "%s", err);
    cr_assert_eq(back.len, strlen(want), "%.*s", (int)back.len, back.data);
    cr_assert(!memcmp(back.data, want, back.len), "%.*s", (int)back.len, back.data);
    sn_buf_fini(&mp);
    sn_buf_fini(&back);
}

Test(sn_bjson, round_trips)
{
    round_trip("{\"a\":1,\"b\":[true,false,null],\"s\":\"\\u00e9\"}",
               "{\"a\":1,\"b\":[true,false,null],\"s\":\"\xc3\xa9\"}");
    round_trip("[1.5,-2,9007199254740992,-40]", "[1.5,-2,9007199254740992,-40]");
    round_trip("\"plain\"", "\"plain\"");
    round_trip("{}", "{}");
}

Test(sn_bjson, integers_become_integers)
{
    sn_buf mp;
    sn_buf_init(&mp);
    char err[64];
    cr_assert_eq(sn_bjson_to_mpack("7", 1, &mp, err, sizeof err), SN_OK);
    cr_assert_eq(mp.len, 1);
    cr_assert_eq((unsigned char)mp.data[0], 7, "positive fixint");
    sn_buf_fini(&mp);
}

Test(sn_bjson, refusals)
{
    sn_buf b;
    sn_buf_init(&b);
    char err[128];
    cr_assert_eq(sn_bjson_to_mpack("{nope", 5, &b, err, sizeof err), SN_EPROTO);
    char deep[200];
    memset(deep, '[', 40);
    memset(deep + 40, ']', 40);
    cr_assert_eq(sn_bjson_to_mpack(deep, 80, &b, err, sizeof err), SN_EPROTO);
    cr_assert(strstr(err, "deeper"), "%s", err);
    cr_assert_eq(b.len, 0, "nothing left behind");
    const unsigned char ext[] = {0xd4, 0x05, 0x00};
    cr_assert_eq(sn_bjson_from_mpack(ext, sizeof ext, &b, err, sizeof err), SN_EINVAL);
    const unsigned char badkey[] = {0x81, 0xc3, 0x01}; /* {true: 1} */
    cr_assert_eq(sn_bjson_from_mpack(badkey, sizeof badkey, &b, err, sizeof err), SN_EINVAL);
    const unsigned char notutf8[] = {0xa1, 0xff};
    cr_assert_eq(sn_bjson_from_mpack(notutf8, sizeof notutf8, &b, err, sizeof err), SN_EINVAL);
    const unsigned char trunc[] = {0x92, 0x01};
    cr_assert_eq(sn_bjson_from_mpack(trunc, sizeof trunc, &b, err, sizeof err), SN_EPROTO);
    const unsigned char trailing[] = {0x01, 0x02};
    cr_assert_eq(sn_bjson_from_mpack(trailing, sizeof trailing, &b, err, sizeof err), SN_EPROTO);
    const unsigned char huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff}; /* 4 G elements, no bytes */
    cr_assert_eq(sn_bjson_from_mpack(huge, sizeof huge, &b, err, sizeof err), SN_EPROTO);
    const unsigned char intkey[] = {0x81, 0x05, 0xa1, 'x'}; /* {5: "x"} */
    cr_assert_eq(sn_bjson_from_mpack(intkey, sizeof intkey, &b, err, sizeof err), SN_OK);
    cr_assert_eq(b.len, 9);
    cr_assert(!memcmp(b.data, "{\"5\":\"x\"}", 9));
    sn_buf_fini(&b);
}
