/* sn_log: records are whole lines with time, level and actor, filtered by level. */
#include "sn_error.h"
#include "sn_log.h"

#include <cjson/cJSON.h>

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

static void write_json(sn_log *log)
{
    sn_log_set_format(log, SN_LOG_JSON);
    sn_log_write(log, SN_LOG_WARN, "actor-7", "quote \" tab\t nl\n ctl\x01 bad\xff end");
    sn_log_where where = {.file = "f.lua", .line = 12, .func = "fn", .actor = "main"};
    sn_log_put(log, SN_LOG_ERROR, "bot", &where, "a\0b", 3);
    sn_log_write(log, SN_LOG_DEBUG, NULL, "hidden");
}

/* --log-format json: each record is one line holding one JSON object a parser accepts. */
Test(sn_log, json_lines_parse)
{
    char *s = capture(SN_LOG_INFO, write_json);
    char *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
        cJSON *o = cJSON_Parse(l);
        cr_assert_not_null(o, "not JSON: %s", l);
        cr_assert_not_null(cJSON_GetObjectItem(o, "time"));
        const char *who = cJSON_GetObjectItem(o, "who")->valuestring;
        const char *msg = cJSON_GetObjectItem(o, "msg")->valuestring;
        if (lines == 0) {
            cr_assert_str_eq(who, "actor-7");
            cr_assert_str_eq(cJSON_GetObjectItem(o, "level")->valuestring, "warn");
            cr_assert_str_eq(msg, "quote \" tab\t nl\n ctl\x01 bad\xef\xbf\xbd end");
        } else {
            cr_assert_str_eq(who, "bot");
            cr_assert_str_eq(cJSON_GetObjectItem(o, "actor")->valuestring, "main");
            cr_assert_str_eq(cJSON_GetObjectItem(o, "file")->valuestring, "f.lua");
            cr_assert_eq(cJSON_GetObjectItem(o, "line")->valueint, 12);
            cr_assert_str_eq(cJSON_GetObjectItem(o, "func")->valuestring, "fn");
            cr_assert(strstr(l, "\"msg\":\"a\\u0000b\"}"), "got: %s", l);
            (void)msg;
        }
        cJSON_Delete(o);
    }
    cr_assert_eq(lines, 2);
    free(s);
}

Test(sn_log, format_parse)
{
    sn_log_format f;
    cr_assert_eq(sn_log_format_parse("json", &f), SN_OK);
    cr_assert_eq(f, SN_LOG_JSON);
    cr_assert_eq(sn_log_format_parse("text", &f), SN_OK);
    cr_assert_eq(f, SN_LOG_TEXT);
    cr_assert_eq(sn_log_format_parse("xml", &f), SN_EINVAL);
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void write_rated(sn_log *log)
{
    sn_log_rate r = {.per_second = 3, .what = "socket failures"};
    /* 100 records in one second (or two, should the clock tick between): at most 3 a
     * second are written, the rest summarised */
    for (int i = 0; i < 100; i++)
        sn_log_rated(log, &r, SN_LOG_ERROR, "cluster", "cannot connect to peer-%d", i);
    sn_log_rate_flush(log, &r, SN_LOG_ERROR, "cluster");
}

Test(sn_log, rated_records_are_bounded_then_summarised)
{
    char *s = capture(SN_LOG_INFO, write_rated);
    int written = count_of(s, "cannot connect to peer-");
    cr_assert(written >= 3 && written <= 6, "%d records written:\n%s", written, s);
    cr_assert(strstr(s, "more socket failures not logged"), "no summary in:\n%s", s);
    free(s);
}
