/* sn_once: first/seen answers, forgetting, and the once_keys limit: refused with SN_ELIMIT
 * (not answered "seen"), logged once however often it is hit. */
#include "sn_error.h"
#include "sn_log.h"
#include "sn_once.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(sn_once, first_then_seen_then_forgotten)
{
    sn_once *o = sn_once_new(SN_ONCE_KEYS_DEFAULT, NULL);
    int first = -1;
    cr_assert_eq(sn_once_first(o, "a", &first), SN_OK);
    cr_assert_eq(first, 1);
    cr_assert_eq(sn_once_first(o, "a", &first), SN_OK);
    cr_assert_eq(first, 0);
    sn_once_forget(o, "a");
    sn_once_forget(o, "never-seen");
    cr_assert_eq(sn_once_first(o, "a", &first), SN_OK);
    cr_assert_eq(first, 1);
    cr_assert_eq(sn_once_max_keys(o), SN_ONCE_KEYS_DEFAULT);
    sn_once_destroy(&o);
    cr_assert_null(o);
    sn_once_destroy(&o);
}

static int count_lines_with(FILE *f, const char *needle)
{
    char line[1024];
    int n = 0;
    rewind(f);
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    return n;
}

Test(sn_once, the_limit_refuses_and_logs_once)
{
    FILE *out = tmpfile();
    sn_log *log = sn_log_new(out, SN_LOG_INFO);
    sn_once *o = sn_once_new(3, log);
    int first = -1;
    char key[16];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(sn_once_first(o, key, &first), SN_OK);
        cr_assert_eq(first, 1);
    }
    for (int i = 3; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        first = -1;
        cr_assert_eq(sn_once_first(o, key, &first), SN_ELIMIT, "a full table is not 'seen'");
        cr_assert_eq(first, -1, "*first untouched on failure");
    }
    cr_assert_eq(sn_once_first(o, "k1", &first), SN_OK, "known keys still answer");
    cr_assert_eq(first, 0);
    fflush(out);
    cr_assert_eq(count_lines_with(out, "once_keys=3"), 1, "97 refusals, one warning");
    cr_assert_eq(count_lines_with(out, "--set once_keys=N"), 1);
    sn_once_forget(o, "k0");
    cr_assert_eq(sn_once_first(o, "k3", &first), SN_OK, "forgetting makes room");
    cr_assert_eq(first, 1);
    sn_once_destroy(&o);
    sn_log_destroy(&log);
    fclose(out);
}
