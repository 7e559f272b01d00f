/* sn_status and sn_statuscli: the JSON of one node and of the cluster (peers valid and not),
 * and the `status` command's tables against a real sn_http server, and against a closed port. */
#include "sn_error.h"
#include "sn_http.h"
#include "sn_status.h"
#include "sn_statuscli.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const sn_status_member MEMBERS[] = {
    {"n2", "tcp://10.0.0.2:7000", "10.0.0.2:8080", "alive", 4, 0.3},
    {"n3", "tcp://10.0.0.3:7000", NULL, "suspect", 2, 6.5},
};
static const sn_status_stage STAGES[] = {{"main", 3}, {"io", 2}};
static const sn_status_mailbox MAILBOXES[] = {{"main", 12}, {"io", 0}};
static const sn_status_error ERRORS[] = {
    {1700000100.5, "main/7", "attempt to index a nil value\nstack traceback: ..."},
    {1700000050.0, "io/2", "timeout"},
};

static sn_status_view view_n1(void)
{
    sn_status_view v = {
        .name = "n1",
        .cluster = "demo",
        .version = "0.1.0",
        .incarnation = 3,
        .uptime_s = 100,
        .listen = "tcp://10.0.0.1:7000",
        .http = "10.0.0.1:8080",
        .now = 1700000123.25,
        .members = MEMBERS,
        .nmembers = 2,
        .stages = STAGES,
        .nstages = 2,
        .mailboxes = MAILBOXES,
        .nmailboxes = 2,
        .errors = ERRORS,
        .nerrors = 2,
    };
    v.counters.messages_in = 1000;
    v.counters.messages_out = 900;
    v.counters.messages_dropped = 5;
    v.counters.errors = 2;
    v.counters.actors = 5;
    v.counters.mailbox_depth = 12;
    return v;
}

/* n2's own view, as it would send it. */
static char *view_n2_json(void)
{
    static const sn_status_stage st[] = {{"main", 1}, {"db", 4}};
    static const sn_status_error er[] = {{1700000110.0, "db/1", "connection reset"}};
    sn_status_view v = {.name = "n2",
                        .cluster = "demo",
                        .version = "0.1.0",
                        .incarnation = 4,
                        .uptime_s = 50,
                        .listen = "tcp://10.0.0.2:7000",
                        .now = 1700000123,
                        .stages = st,
                        .nstages = 2,
                        .errors = er,
                        .nerrors = 1};
    v.counters.messages_in = 40;
    v.counters.messages_out = 41;
    char *json = NULL;
    size_t len;
    cr_assert_eq(sn_status_render_self(&v, &json, &len), SN_OK);
    return json;
}

static char *render_cluster(void)
{
    sn_status_view v = view_n1();
    char *n2 = view_n2_json();
    const char bad[] = "{\"node\": {\"name\": \"n3\"";
    sn_status_peer peers[] = {
        {.name = "n2", .json = n2, .len = strlen(n2), .age_s = 0.7},
        {.name = "n3", .json = bad, .len = strlen(bad), .age_s = 3},
        {.name = "n2", .json = "{}", .len = 2}, /* a duplicate name is ignored */
    };
    char *json = NULL;
    size_t len = 0;
    cr_assert_eq(sn_status_render_cluster(&v, peers, 3, &json, &len), SN_OK);
    cr_assert_eq(strlen(json), len);
    free(n2);
    return json;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert_not_null(v, "no \"%s\"", k);
    return v;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number", k);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    cr_assert(cJSON_IsString(v), "\"%s\" is not a string", k);
    return v->valuestring;
}

Test(sn_status, self_view)
{
    sn_status_view v = view_n1();
    sn_status_error many[25];
    for (int i = 0; i < 25; i++)
        many[i] = (sn_status_error){1700000000 + i, "a/1", "e"};
    v.errors = many;
    v.nerrors = 25;
    v.version = NULL;
    char *json;
    size_t len;
    cr_assert_eq(sn_status_render_self(&v, &json, &len), SN_OK);
    cJSON *t = cJSON_Parse(json);
    cr_assert_not_null(t, "invalid: %s", json);
    const cJSON *node = get(t, "node");
    cr_assert_str_eq(str(node, "name"), "n1");
    cr_assert_str_eq(str(node, "version"), "", "NULL renders as \"\"");
    cr_assert_eq(num(node, "incarnation"), 3);
    cr_assert_eq(num(node, "time"), 1700000123.25);
    cr_assert_eq(num(get(t, "counters"), "messages_in"), 1000);
    cr_assert_eq(num(get(t, "counters"), "function_cache_hits"), 0);
    cr_assert_eq(cJSON_GetArraySize(get(t, "stages")), 2);
    cr_assert_str_eq(str(cJSON_GetArrayItem(get(t, "mailboxes"), 0), "stage"), "main");
    cr_assert_eq(cJSON_GetArraySize(get(t, "errors")), SN_STATUS_MAX_ERRORS);
    cJSON_Delete(t);
    free(json);
}

/* Incarnations are microseconds since the epoch (about 1.8e15): cJSON prints such a double as
 * "1.79597491824318e+15" when it ends in 0, which a JSON reader (Python's) takes for a
 * float, and a frame built from it carried a float incarnation that the wire refuses. Whole
 * numbers are written as integers, always. */
Test(sn_status, big_integers_are_written_as_integers)
{
    sn_status_view v = view_n1();
    v.incarnation = 1795974918243180ULL;
    v.counters.messages_in = 2000000000000000ULL;
    char *json;
    size_t len;
    cr_assert_eq(sn_status_render_self(&v, &json, &len), SN_OK);
    cr_assert(strstr(json, "\"incarnation\":1795974918243180"), "%s", json);
    cr_assert(strstr(json, "\"messages_in\":2000000000000000"), "%s", json);
    cr_assert_null(strstr(json, "e+"), "%s", json);
    free(json);
    /* and a peer's, parsed and written again in the cluster view */
    const char *text = "{\"node\":{\"name\":\"n2\",\"incarnation\":1795974918243180,"
                       "\"time\":1.5}}";
    sn_status_peer peer = {.name = "n2", .json = text, .len = strlen(text)};
    char *all;
    cr_assert_eq(sn_status_render_cluster(&v, &peer, 1, &all, &len), SN_OK);
    cr_assert(strstr(all, "\"incarnation\":1795974918243180,\"time\":1.5"), "%s", all);
    cr_assert_null(strstr(all, "e+"), "%s", all);
    free(all);
}

Test(sn_status, cluster_view_with_peers)
{
    char *json = render_cluster();
    cJSON *t = cJSON_Parse(json);
    cr_assert_not_null(t, "invalid: %s", json);
    cr_assert_str_eq(str(t, "node"), "n1");
    cr_assert_str_eq(str(t, "cluster"), "demo");
    cr_assert_eq(num(t, "generated_at"), 1700000123.25);

    const cJSON *members = get(t, "members");
    cr_assert_eq(cJSON_GetArraySize(members), 3);
    const cJSON *self = cJSON_GetArrayItem(members, 0);
    cr_assert_str_eq(str(self, "name"), "n1");
    cr_assert_str_eq(str(self, "state"), "alive");
    cr_assert_str_eq(str(self, "http"), "10.0.0.1:8080");
    const cJSON *n3 = cJSON_GetArrayItem(members, 2);
    cr_assert_str_eq(str(n3, "state"), "suspect");
    cr_assert(cJSON_IsNull(get(n3, "http")), "no http endpoint is null");
    cr_assert_eq(num(n3, "last_seen_s"), 6.5);

    const cJSON *nodes = get(t, "nodes");
    cr_assert_eq(cJSON_GetArraySize(nodes), 3, "n1, n2, n3 once each");
    const cJSON *v1 = get(nodes, "n1");
    cr_assert_eq(num(v1, "age_s"), 0);
    cr_assert_eq(num(get(v1, "counters"), "messages_out"), 900);
    const cJSON *v2 = get(nodes, "n2");
    cr_assert_eq(num(v2, "age_s"), 0.7);
    cr_assert_str_eq(str(get(v2, "node"), "name"), "n2");
    cr_assert_str_eq(str(cJSON_GetArrayItem(get(v2, "stages"), 1), "stage"), "db");
    const cJSON *v3 = get(nodes, "n3");
    cr_assert_not_null(strstr(str(v3, "error"), "invalid JSON"), "%s", str(v3, "error"));
    cr_assert_eq(num(v3, "age_s"), 3);
    cJSON_Delete(t);
    free(json);

    /* missing, not-an-object and reported-failure peers */
    sn_status_view v = view_n1();
    sn_status_peer odd[] = {{.name = "a"},
                            {.name = "b", .json = "[1,2]", .len = 5},
                            {.name = "c", .json = "\x01\xff", .len = 2},
                            {.name = "d", .json = "{}", .len = 2, .error = "timed out"}};
    cr_assert_eq(sn_status_render_cluster(&v, odd, 4, &json, NULL), SN_OK);
    t = cJSON_Parse(json);
    cr_assert_not_null(t);
    nodes = get(t, "nodes");
    cr_assert_str_eq(str(get(nodes, "a"), "error"), "not gathered yet");
    cr_assert_str_eq(str(get(nodes, "b"), "error"), "status is not a JSON object");
    cr_assert_not_null(strstr(str(get(nodes, "c"), "error"), "invalid JSON"));
    cr_assert_str_eq(str(get(nodes, "d"), "error"), "timed out");
    cJSON_Delete(t);
    free(json);
}

/* ---- the status command ---- */

static int serve_cluster(void *ud, char **body, size_t *len)
{
    *body = render_cluster();
    *len = strlen(*body);
    return SN_OK;
}

/* The whitespace-separated words of the line of text starting with first, joined by one space. */
static void words_of_line(const char *text, const char *first, char *out, size_t cap)
{
    size_t fl = strlen(first);
    const char *line = text;
    while (line && !(strncmp(line, first, fl) == 0 && (line[fl] == ' ' || line[fl] == '\n')))
        line = (line = strchr(line, '\n')) ? line + 1 : NULL;
    cr_assert_not_null(line, "no line starting with \"%s\" in:\n%s", first, text);
    size_t n = 0;
    int space = 0;
    for (const char *p = line; *p && *p != '\n' && n + 2 < cap; p++) {
        if (*p == ' ') {
            space = 1;
            continue;
        }
        if (space && n) out[n++] = ' ';
        space = 0;
        out[n++] = *p;
    }
    out[n] = '\0';
}

Test(sn_status, cli_prints_tables)
{
    sn_http_handlers h = {.status = serve_cluster};
    int err = 0;
    sn_http *srv = sn_http_new("127.0.0.1:0", &h, NULL, &err);
    cr_assert_not_null(srv);
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%u", sn_http_port(srv));

    char *out = NULL, *errt = NULL;
    size_t outl = 0, errl = 0;
    FILE *o = open_memstream(&out, &outl), *e = open_memstream(&errt, &errl);
    cr_assert_eq(sn_status_cli(hp, o, e), 0);
    fclose(o);
    fclose(e);
    cr_assert_str_eq(errt, "");

    char w[512];
    words_of_line(out, "cluster", w, sizeof w);
    cr_assert_eq(strncmp(w, "cluster demo, seen from n1 at ", 30), 0, "%s", w);
    words_of_line(out, "NODE", w, sizeof w);
    cr_assert_str_eq(w, "NODE STATE INC ENDPOINT HTTP UPTIME MSGS IN MSGS OUT AVG IN/S DROPPED "
                        "ERRORS ACTORS MAILBOX NOTE");
    words_of_line(out, "n1", w, sizeof w);
    cr_assert_str_eq(w,
                     "n1 alive 3 tcp://10.0.0.1:7000 10.0.0.1:8080 1m40s 1000 900 10.0 5 2 5 12");
    words_of_line(out, "n2", w, sizeof w);
    cr_assert_str_eq(w, "n2 alive 4 tcp://10.0.0.2:7000 10.0.0.2:8080 50s 40 41 0.8 0 0 0 0");
    words_of_line(out, "n3", w, sizeof w);
    cr_assert_str_eq(w, "n3 suspect 2 tcp://10.0.0.3:7000 - - - - - - - - - status: invalid "
                        "JSON at byte 21");
    words_of_line(out, "STAGE", w, sizeof w);
    cr_assert_str_eq(w, "STAGE n1 n2 n3");
    words_of_line(out, "main", w, sizeof w);
    cr_assert_str_eq(w, "main 3 1 -");
    words_of_line(out, "io", w, sizeof w);
    cr_assert_str_eq(w, "io 2 - -");
    words_of_line(out, "db", w, sizeof w);
    cr_assert_str_eq(w, "db - 4 -");
    words_of_line(out, "LAST", w, sizeof w);
    words_of_line(out, "TIME", w, sizeof w);
    cr_assert_str_eq(w, "TIME NODE ACTOR TEXT");
    /* newest first, one line each */
    const char *e1 = strstr(out, "  n2    db/1    connection reset\n");
    const char *e2 = strstr(out, "  n1    main/7  attempt to index a nil value\n");
    const char *e3 = strstr(out, "  n1    io/2    timeout\n");
    cr_assert(e1 && e2 && e3 && e1 < e2 && e2 < e3, "errors:\n%s", out);
    free(out);
    free(errt);
    sn_http_destroy(&srv);
}

Test(sn_status, cli_closed_port)
{
    /* a port that was free a moment ago */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%u", ntohs(a.sin_port));

    char *out = NULL, *errt = NULL;
    size_t outl = 0, errl = 0;
    FILE *o = open_memstream(&out, &outl), *e = open_memstream(&errt, &errl);
    cr_assert_eq(sn_status_cli(hp, o, e), 1);
    fclose(o);
    fclose(e);
    char want[96];
    snprintf(want, sizeof want, "status: cannot connect to %s: Connection refused\n", hp);
    cr_assert_str_eq(errt, want);
    cr_assert_str_eq(out, "");
    free(out);
    free(errt);

    o = open_memstream(&out, &outl);
    e = open_memstream(&errt, &errl);
    cr_assert_eq(sn_status_cli("no-port", o, e), 1);
    fclose(o);
    fclose(e);
    cr_assert_str_eq(errt, "status: bad address no-port (expected HOST:PORT)\n");
    free(out);
    free(errt);
}
