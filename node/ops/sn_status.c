/* sn_status: builds cJSON trees from the plain view and prints them compact; peers' views are
 * parsed (bounded) and embedded, or replaced by an error object. */
#include "sn_status.h"
#include "sn_clock.h"

#include "sn_error.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const char *s)
{
    return s ? s : "";
}

/* Each adder sets *ok to 0 on failure, so a whole object is built and checked once. */
static void add_str(cJSON *o, const char *k, const char *v, int *ok)
{
    if (!cJSON_AddStringToObject(o, k, str(v))) *ok = 0;
}

static void add_num(cJSON *o, const char *k, double v, int *ok)
{
    if (!cJSON_AddNumberToObject(o, k, v)) *ok = 0;
}

/* A whole number, written as one: cJSON prints a double of 1e15 or more that ends in 0 with
 * an exponent ("1.79597491824318e+15"), which JSON readers such as Python's take for a
 * float; an incarnation (microseconds since the epoch) is such a number. */
static void add_int(cJSON *o, const char *k, uint64_t v, int *ok)
{
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    if (!cJSON_AddRawToObject(o, k, text)) *ok = 0;
}

static cJSON *add_obj(cJSON *o, const char *k, int *ok)
{
    cJSON *c = cJSON_AddObjectToObject(o, k);
    if (!c) *ok = 0;
    return c;
}

static cJSON *add_arr(cJSON *o, const char *k, int *ok)
{
    cJSON *c = cJSON_AddArrayToObject(o, k);
    if (!c) *ok = 0;
    return c;
}

static cJSON *push_obj(cJSON *arr, int *ok)
{
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddItemToArray(arr, c)) {
        cJSON_Delete(c);
        *ok = 0;
        return NULL;
    }
    return c;
}

static void add_truncated(cJSON *o, const char *k, size_t have, size_t cap, int *ok)
{
    if (have > cap) add_int(o, k, (uint64_t)(have - cap), ok);
}

static cJSON *self_tree(const sn_status_view *v)
{
    int ok = 1;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON *node = add_obj(root, "node", &ok);
    if (node) {
        add_str(node, "name", v->name, &ok);
        add_str(node, "cluster", v->cluster, &ok);
        add_str(node, "version", v->version, &ok);
        add_int(node, "incarnation", v->incarnation, &ok);
        add_num(node, "uptime_s", v->uptime_s, &ok);
        add_str(node, "listen", v->listen, &ok);
        add_str(node, "http", v->http, &ok);
        add_num(node, "time", v->now > 0 ? v->now : sn_clock_wall(), &ok);
    }
    cJSON *c = add_obj(root, "counters", &ok);
    if (c) {
        const sn_status_counters *k = &v->counters;
        add_int(c, "messages_in", k->messages_in, &ok);
        add_int(c, "messages_out", k->messages_out, &ok);
        add_int(c, "messages_dropped", k->messages_dropped, &ok);
        add_int(c, "errors", k->errors, &ok);
        add_int(c, "jobs", k->jobs, &ok);
        add_int(c, "actors", k->actors, &ok);
        add_int(c, "workers", k->workers, &ok);
        add_int(c, "mailbox_depth", k->mailbox_depth, &ok);
        add_int(c, "lua_memory_bytes", k->lua_memory_bytes, &ok);
        add_int(c, "wire_bytes_in", k->wire_bytes_in, &ok);
        add_int(c, "wire_bytes_out", k->wire_bytes_out, &ok);
        add_int(c, "function_cache_hits", k->function_cache_hits, &ok);
    }
    cJSON *stages = add_arr(root, "stages", &ok);
    for (size_t i = 0; stages && ok && i < v->nstages && i < SN_STATUS_MAX_STAGES; i++) {
        cJSON *s = push_obj(stages, &ok);
        if (s) {
            add_str(s, "stage", v->stages[i].stage, &ok);
            add_int(s, "actors", v->stages[i].actors, &ok);
        }
    }
    add_truncated(root, "stages_truncated", v->nstages, SN_STATUS_MAX_STAGES, &ok);
    cJSON *mbs = add_arr(root, "mailboxes", &ok);
    for (size_t i = 0; mbs && ok && i < v->nmailboxes && i < SN_STATUS_MAX_STAGES; i++) {
        cJSON *s = push_obj(mbs, &ok);
        if (s) {
            add_str(s, "stage", v->mailboxes[i].stage, &ok);
            add_int(s, "depth", v->mailboxes[i].depth, &ok);
        }
    }
    cJSON *errs = add_arr(root, "errors", &ok);
    for (size_t i = 0; errs && ok && i < v->nerrors && i < SN_STATUS_MAX_ERRORS; i++) {
        cJSON *e = push_obj(errs, &ok);
        if (e) {
            add_num(e, "time", v->errors[i].time, &ok);
            add_str(e, "actor", v->errors[i].actor, &ok);
            add_str(e, "text", v->errors[i].text, &ok);
        }
    }
    cJSON *brk = add_arr(root, "broker", &ok);
    for (size_t i = 0; brk && ok && i < v->nbrokers && i < SN_STATUS_MAX_STAGES; i++) {
        const sn_broker_stats *b = &v->brokers[i];
        cJSON *e = push_obj(brk, &ok);
        if (!e)
            break;
        add_str(e, "uri", b->uri, &ok);
        add_int(e, "id", b->id, &ok);
        add_int(e, "open", b->open, &ok);
        add_int(e, "accepted", b->accepted, &ok);
        add_int(e, "bytes_in", b->bytes_in, &ok);
        add_int(e, "bytes_out", b->bytes_out, &ok);
        add_int(e, "frames_in", b->frames_in, &ok);
        add_int(e, "frames_out", b->frames_out, &ok);
        add_int(e, "queued_out", b->queued_out, &ok);
        add_int(e, "paused", b->paused, &ok);
        cJSON *cl = add_obj(e, "closed", &ok);
        for (int r = 0; cl && ok && r < SN_BCLOSE_N; r++)
            add_int(cl, sn_broker_reason_name(r), b->closed[r], &ok);
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int print(cJSON *root, char **json, size_t *len)
{
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) return SN_ENOMEM;
    *json = s;
    if (len) *len = strlen(s);
    return SN_OK;
}

int sn_status_render_self(const sn_status_view *v, char **json, size_t *len)
{
    assert(v && json && "sn_status_render_self: NULL argument");
    *json = NULL;
    cJSON *root = self_tree(v);
    if (!root) return SN_ENOMEM;
    return print(root, json, len);
}

static void add_member(cJSON *arr, const char *name, const char *endpoint, const char *http,
                       const char *state, uint64_t incarnation, double last_seen_s, int *ok)
{
    cJSON *m = push_obj(arr, ok);
    if (!m) return;
    add_str(m, "name", name, ok);
    add_str(m, "endpoint", endpoint, ok);
    if (http)
        add_str(m, "http", http, ok);
    else if (!cJSON_AddNullToObject(m, "http"))
        *ok = 0;
    add_str(m, "state", state, ok);
    add_int(m, "incarnation", incarnation, ok);
    add_num(m, "last_seen_s", last_seen_s, ok);
}

static cJSON *error_node(const char *why, double age_s)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    if (o) {
        add_str(o, "error", why, &ok);
        add_num(o, "age_s", age_s, &ok);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Whole numbers of a parsed tree written back as integers (see add_int): cJSON keeps a parsed
 * number as a double, and would print a peer's incarnation with an exponent. */
static int integers_exact(cJSON *t)
{
    for (cJSON *c = t->child, *next; c; c = next) {
        next = c->next;
        if (cJSON_IsNumber(c)) {
            double d = c->valuedouble;
            if (d == floor(d) && fabs(d) >= 1e9 && fabs(d) <= 9007199254740992.0) {
                char text[32];
                snprintf(text, sizeof text, "%.0f", d);
                cJSON *raw = cJSON_CreateRaw(text);
                if (!raw) return 0;
                raw->string = c->string; /* the key moves with the value */
                c->string = NULL;
                cJSON_ReplaceItemViaPointer(t, c, raw); /* c is t's child: cannot fail */
            }
        } else if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && !integers_exact(c)) {
            return 0;
        }
    }
    return 1;
}

/* A peer's view as a tree: its parsed JSON with age_s set, or an error object. */
static cJSON *peer_tree(const sn_status_peer *p)
{
    if (p->error) return error_node(p->error, p->age_s);
    if (!p->json) return error_node("not gathered yet", p->age_s);
    if (p->len > SN_STATUS_MAX_PEER_JSON) return error_node("status too large", p->age_s);
    const char *end = NULL;
    cJSON *t = cJSON_ParseWithLengthOpts(p->json, p->len, &end, 0);
    if (!t) {
        char why[96];
        snprintf(why, sizeof why, "invalid JSON at byte %zu",
                 end && end >= p->json ? (size_t)(end - p->json) : (size_t)0);
        return error_node(why, p->age_s);
    }
    if (!cJSON_IsObject(t)) {
        cJSON_Delete(t);
        return error_node("status is not a JSON object", p->age_s);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(t, "age_s");
    if (!integers_exact(t) || !cJSON_AddNumberToObject(t, "age_s", p->age_s)) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

int sn_status_render_cluster(const sn_status_view *v, const sn_status_peer *peers, size_t npeers,
                             char **json, size_t *len)
{
    assert(v && (peers || npeers == 0) && json && "sn_status_render_cluster: NULL argument");
    *json = NULL;
    int ok = 1;
    cJSON *root = cJSON_CreateObject();
    if (!root) return SN_ENOMEM;
    add_str(root, "node", v->name, &ok);
    add_str(root, "cluster", v->cluster, &ok);
    add_num(root, "generated_at", v->now > 0 ? v->now : sn_clock_wall(), &ok);

    cJSON *members = add_arr(root, "members", &ok);
    if (members) {
        add_member(members, str(v->name), v->listen, v->http, "alive", v->incarnation, 0, &ok);
        for (size_t i = 0; ok && i < v->nmembers && i < SN_STATUS_MAX_MEMBERS; i++) {
            const sn_status_member *m = &v->members[i];
            add_member(members, m->name, m->endpoint, m->http, m->state, m->incarnation,
                       m->last_seen_s, &ok);
        }
    }
    add_truncated(root, "members_truncated", v->nmembers, SN_STATUS_MAX_MEMBERS, &ok);

    cJSON *nodes = add_obj(root, "nodes", &ok);
    if (nodes && ok) {
        cJSON *self = self_tree(v);
        if (!self || !cJSON_AddNumberToObject(self, "age_s", 0) ||
            !cJSON_AddItemToObject(nodes, str(v->name), self)) {
            cJSON_Delete(self);
            ok = 0;
        }
    }
    for (size_t i = 0; nodes && ok && i < npeers && i < SN_STATUS_MAX_MEMBERS; i++) {
        const sn_status_peer *p = &peers[i];
        /* the first view under a name wins: never two equal keys in one object */
        if (!p->name || cJSON_GetObjectItemCaseSensitive(nodes, p->name)) continue;
        cJSON *t = peer_tree(p);
        if (!t || !cJSON_AddItemToObject(nodes, p->name, t)) {
            cJSON_Delete(t);
            ok = 0;
        }
    }
    if (!ok) {
        cJSON_Delete(root);
        return SN_ENOMEM;
    }
    return print(root, json, len);
}
