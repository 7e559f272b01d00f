/* sn_limits: defaults, "*" for every stage, then a stage's own; value checks. */
#include "sn_error.h"
#include "sn_limits.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(sn_limits, defaults_star_then_own)
{
    const char *specs[] = {"w:budget=0.5,mailbox=10", "*:budget=2,memory=16M", "w:restart=always"};
    sn_limits_table *t = sn_limits_new(specs, 3);
    sn_limits d = sn_limits_of(NULL, "x");
    cr_assert_float_eq(d.budget, 5.0, 1e-9);
    cr_assert_eq(d.memory_cap, 64u << 20);
    cr_assert_eq(d.memory_warn, 32u << 20);
    cr_assert_eq(d.mailbox, 65536);
    sn_limits x = sn_limits_of(t, "x");
    cr_assert_float_eq(x.budget, 2.0, 1e-9);
    cr_assert_eq(x.memory_cap, 16u << 20);
    sn_limits w = sn_limits_of(t, "w");
    cr_assert_float_eq(w.budget, 0.5, 1e-9, "a stage's own setting beats *");
    cr_assert_eq(w.mailbox, 10);
    cr_assert_eq(w.memory_cap, 16u << 20);
    cr_assert_eq(w.restart, SN_RESTART_ALWAYS);
    sn_limits_destroy(&t);
    cr_assert_null(t);
}

Test(sn_limits, checks_name_the_problem)
{
    char err[256];
    cr_assert_eq(sn_limits_check("w:budget=1,memory=2G,intensity=5,period=10", err, sizeof err),
                 SN_OK, "%s", err);
    cr_assert_eq(sn_limits_check("w", err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "SID:key=value"), "%s", err);
    cr_assert_eq(sn_limits_check("w:budgte=1", err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "unknown limit 'budgte'"), "%s", err);
    cr_assert_eq(sn_limits_check("w:memory=lots", err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "'lots'"), "%s", err);
    cr_assert_eq(sn_limits_check("w:restart=sometimes", err, sizeof err), SN_EINVAL);
    cr_assert_eq(sn_limits_check("w:mailbox=0", err, sizeof err), SN_EINVAL);
}

/* issue 12: strtod takes "nan" and "inf"; a NaN budget compared false everywhere and ran
 * unbounded. Every number must be finite and not negative, and the error names the key. */
Test(sn_limits, non_finite_and_negative_values_are_refused)
{
    char err[256];
    const char *bad[] = {"w:budget=nan",      "w:memory=nan",      "w:budget=inf",
                         "w:memory=-1",       "w:period=NaN",      "w:budget=-0.5",
                         "w:memory_warn=inf", "w:mailbox=nan",     "w:intensity=nan",
                         "w:memory=1e30G",    "w:mailbox_bytes=0", "w:mailbox_bytes=nan"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(sn_limits_check(bad[i], err, sizeof err), SN_EINVAL, "%s accepted", bad[i]);
        const char *key = strchr(bad[i], ':') + 1;
        char want[64];
        snprintf(want, sizeof want, "for '%.*s'", (int)(strchr(key, '=') - key), key);
        cr_assert(strstr(err, want), "%s: %s", bad[i], err);
    }
}

Test(sn_limits, mailbox_bytes_is_a_limit_with_a_default)
{
    const char *specs[] = {"*:mailbox_bytes=8M", "w:mailbox_bytes=1K"};
    sn_limits_table *t = sn_limits_new(specs, 2);
    cr_assert_eq(sn_limits_of(NULL, "x").mailbox_bytes, 64u << 20);
    cr_assert_eq(sn_limits_of(t, "x").mailbox_bytes, 8u << 20);
    cr_assert_eq(sn_limits_of(t, "w").mailbox_bytes, 1024);
    sn_limits_destroy(&t);
}
