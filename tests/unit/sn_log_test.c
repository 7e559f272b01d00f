/* sn_log: records are whole lines with time, level and actor, filtered by level. */
#include "sn_error.h"
#include "sn_log.h"

#include <criterion/criterion.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

static char *capture(sn_log_level level, void (*write)(sn_log *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sn_log *log = sn_log_new(f, level);
    write(log);
    sn_log_destroy(&log);
    cr_assert_null(log);
    fclose(f);
    return buf;
}

static void write_some(sn_log *log)
{
    sn_log_write(log, SN_LOG_INFO, "actor-7", "hello %d", 42);
    sn_log_write(log, SN_LOG_DEBUG, "actor-7", "hidden");
    sn_log_write(log, SN_LOG_ERROR, NULL, "multi\nline");
}

Test(sn_log, format_and_filter)
{
    char *s = capture(SN_LOG_INFO, write_some);
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z \\[INFO \\] "
                         "\\[actor-7\\] hello 42\n",
                         REG_EXTENDED),
                 0);
    cr_assert_eq(regexec(&re, s, 0, NULL, 0), 0, "got: %s", s);
    regfree(&re);
    cr_assert_null(strstr(s, "hidden"));
    cr_assert(strstr(s, "[ERROR] [node] multi\nline\n"), "got: %s", s);
    free(s);
}

static void write_long(sn_log *log)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sn_log_write(log, SN_LOG_WARN, "a", "%s|end", big);
}

Test(sn_log, long_records_are_whole)
{
    char *s = capture(SN_LOG_DEBUG, write_long);
    cr_assert(strstr(s, "xxxx|end\n"));
    cr_assert_gt(strlen(s), 5000);
    free(s);
}

Test(sn_log, levels_parse)
{
    sn_log_level l;
    cr_assert_eq(sn_log_level_parse("warn", &l), SN_OK);
    cr_assert_eq(l, SN_LOG_WARN);
    cr_assert_str_eq(sn_log_level_name(l), "warn");
    cr_assert_eq(sn_log_level_parse("WARN", &l), SN_EINVAL);
    cr_assert_str_eq(sn_strerror(SN_ENOMEM), "out of memory");
    cr_assert_str_eq(sn_strerror(9999), "unknown error");
}
