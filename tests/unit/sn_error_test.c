/* sn_error: every code has a text; the failure texts scripts see come from one function. */
#include "sn_error.h"

#include <criterion/criterion.h>
#include <string.h>

Test(sn_error, every_code_has_a_text)
{
    for (int e = SN_OK; e <= SN_EDOWN; e++)
        cr_assert_str_neq(sn_strerror(e), "unknown error", "code %d", e);
    cr_assert_str_eq(sn_strerror(SN_EDOWN + 1), "unknown error");
    cr_assert_eq(SN_EUNTRUSTED, 12, "existing numbers do not move");
}

Test(sn_error, failure_texts)
{
    char buf[64];
    cr_assert_str_eq(sn_error_text(SN_EFULL, NULL, buf, sizeof buf), "mailbox full");
    cr_assert_str_eq(sn_error_text(SN_EDOWN, NULL, buf, sizeof buf), "node down");
    cr_assert_str_eq(sn_error_text(SN_ETIMEDOUT, NULL, buf, sizeof buf), "timeout");
    cr_assert_str_eq(sn_error_text(SN_ENOROUTE, "chat", buf, sizeof buf), "no route to chat");
    cr_assert_str_eq(sn_error_text(SN_ENOROUTE, NULL, buf, sizeof buf), "no route");
    cr_assert_str_eq(sn_error_text(SN_ENOMEM, NULL, buf, sizeof buf), "out of memory");
    cr_assert_str_eq(sn_error_text(SN_ENOENT, "x.lua", buf, sizeof buf), "not found: x.lua");
    cr_assert_str_eq(sn_error_text(SN_EFULL, "", buf, sizeof buf), "mailbox full");
    cr_assert_eq(sn_error_text(SN_EDOWN, NULL, buf, sizeof buf), buf, "returns buf");
}

Test(sn_error, texts_are_cut_to_the_buffer)
{
    char small[8];
    cr_assert_str_eq(sn_error_text(SN_ENOROUTE, "a-long-stage", small, sizeof small), "no rout");
    char one[1];
    cr_assert_str_eq(sn_error_text(SN_EFULL, NULL, one, sizeof one), "");
}
