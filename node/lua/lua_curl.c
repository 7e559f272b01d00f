/* lua_curl: the request table is read on the sender's thread into an sn_curl_req; the
 * response is written on the loop thread, without a lua_State, straight as a snapshot of
 * one table (proto/SNAPSHOT.md) with sn_mpack. The script's `extra` value is encoded at the
 * call as the snapshot of {extra = v}: that table and the response are both sequence number
 * 0, so extra's bytes (back-references included) are copied into the response unchanged. */
#include "lua_curl.h"
#include "lua_host.h"
#include "sn_curl.h"
#include "sn_error.h"
#include "sn_mpack.h"
#include "sn_msg.h"
#include "sn_node.h"
#include "sn_router.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define CURL_STAGE "curl"
#define NO_ANSWER  "-" /* "curl:-": nobody waits for the response */

/* Who waits for the response, and the bytes of its extra value. */
typedef struct waiter {
    sn_node *node;
    sn_log *log;
    uint64_t actor;
    char handler[512];
    unsigned char *extra; /* "extra" and its value, as in a snapshot map; NULL: none */
    size_t extra_len;
} waiter;

static void put_kv_str(sn_buf *b, const char *k, const char *v, size_t n)
{
    sn_mpack_put_str(b, k, strlen(k));
    sn_mpack_put_str(b, v, n);
}

/* data = {type=, <param>=, length=, bps=, content=, result=, message=, time=}, as STAGE. */
static void put_data(sn_buf *b, const sn_curl_result *r)
{
    char type[256] = "", pk[64] = "", pv[256] = "";
    if (r->content_type) {
        const char *semi = strchr(r->content_type, ';');
        size_t n = semi ? (size_t)(semi - r->content_type) : strlen(r->content_type);
        snprintf(type, sizeof type, "%.*s", (int)n, r->content_type);
        if (semi) {
            const char *p = semi + 1 + strspn(semi + 1, " ");
            const char *eq = strchr(p, '=');
            if (eq && eq > p) {
                snprintf(pk, sizeof pk, "%.*s", (int)(eq - p), p);
                snprintf(pv, sizeof pv, "%s", eq + 1);
            }
        }
    }
    uint32_t n = 5 + (type[0] != 0) + (pk[0] != 0) + (r->body != NULL);
    sn_mpack_put_map(b, n);
    if (type[0]) put_kv_str(b, "type", type, strlen(type));
    if (pk[0]) put_kv_str(b, pk, pv, strlen(pv));
    sn_mpack_put_str(b, "length", 6);
    sn_mpack_put_int(b, (int64_t)r->body_len);
    sn_mpack_put_str(b, "bps", 3);
    sn_mpack_put_double(b, r->bps);
    if (r->body) put_kv_str(b, "content", r->body, r->body_len);
    sn_mpack_put_str(b, "result", 6);
    sn_mpack_put_int(b, r->code);
    put_kv_str(b, "message", r->message, strlen(r->message));
    sn_mpack_put_str(b, "time", 4);
    sn_mpack_put_double(b, r->seconds);
}

/* The response: {extra=, url=, status=, effective_url=, redirect_url=, data={...}}. */
static int encode_response(sn_buf *b, const waiter *w, const sn_curl_result *r)
{
    /* room for everything first, so no write below can fail halfway (each string adds at
     * most 5 header bytes; the fixed keys and numbers fit in the 512) */
    size_t need = 512 + w->extra_len + strlen(r->url) + strlen(r->message) + r->body_len +
                  (r->effective_url ? strlen(r->effective_url) : 0) +
                  (r->redirect_url ? strlen(r->redirect_url) : 0) +
                  (r->content_type ? strlen(r->content_type) : 0);
    if (sn_buf_reserve(b, need) != 0) return SN_ENOMEM;
    uint32_t n = 3 + (w->extra != NULL) + (r->effective_url != NULL) + (r->redirect_url != NULL);
    sn_mpack_put_raw(b, "\x01", 1);
    sn_mpack_put_array(b, 1);
    sn_mpack_put_map(b, n);
    if (w->extra) sn_mpack_put_raw(b, w->extra, w->extra_len); /* first: see the file's comment */
    put_kv_str(b, "url", r->url, strlen(r->url));
    sn_mpack_put_str(b, "status", 6);
    sn_mpack_put_int(b, r->status);
    if (r->effective_url)
        put_kv_str(b, "effective_url", r->effective_url, strlen(r->effective_url));
    if (r->redirect_url) put_kv_str(b, "redirect_url", r->redirect_url, strlen(r->redirect_url));
    sn_mpack_put_str(b, "data", 4);
    put_data(b, r);
    return SN_OK;
}

static void waiter_free(waiter *w)
{
    free(w->extra);
    free(w);
}

/* sn_curl's done: loop thread. */
static void answer(void *ud, const sn_curl_result *r)
{
    waiter *w = ud;
    if (r && strcmp(w->handler, NO_ANSWER) != 0) {
        sn_buf b;
        sn_buf_init(&b);
        int rc = encode_response(&b, w, r);
        sn_msg *m = rc == SN_OK
                        ? sn_msg_new(SN_MSG_SIGNAL, w->handler, NULL, CURL_STAGE, b.data, b.len)
                        : NULL;
        sn_buf_fini(&b);
        rc = m ? sn_node_post(w->node, w->actor, m, 1) : SN_ENOMEM;
        if (rc != SN_OK) {
            sn_msg_destroy(&m);
            sn_log_write(w->log, rc == SN_ECLOSED ? SN_LOG_DEBUG : SN_LOG_WARN, "curl",
                         "response to '%s' for actor %llu lost: %s", r->url,
                         (unsigned long long)w->actor, sn_strerror(rc));
        }
    }
    waiter_free(w);
}

/* ---- the sender's side ---- */

/* Frees q and w, then raises; returns NULL for the compiler (luaL_error does not return). */
static sn_curl_req *field_error(lua_State *L, sn_curl_req *q, waiter *w, const char *fmt,
                                const char *a, const char *b)
{
    sn_curl_req_destroy(&q);
    if (w) waiter_free(w);
    luaL_error(L, fmt, a, b);
    return NULL;
}

/* Pushes request[key] without metamethods: nothing a script wrote runs while the request
 * is half built (an error there would leak it). Returns its type. */
static int raw_field(lua_State *L, const char *key)
{
    lua_pushstring(L, key);
    return lua_rawget(L, 2);
}

/* A number field of the request table at index 2 (ms, bytes, hops); -1 when absent. */
static long opt_count(lua_State *L, const char *key, int *bad)
{
    long v = -1;
    int t = raw_field(L, key);
    if (t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0)
        v = (long)lua_tointeger(L, -1);
    else if (t != LUA_TNIL)
        *bad = 1;
    lua_pop(L, 1);
    return v;
}

static int is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static void add_escaped(sn_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
        sn_mpack_put_raw(b, is_unreserved(ch) ? (const char *)&s[i] : esc,
                         is_unreserved(ch) ? 1 : 3);
    }
}

/* data as a table (at index data): form fields "k=v&..." (strings and numbers) into b.
 * NULL, or the first key that is not a string or whose value is neither. */
static const char *form_body(lua_State *L, int data, sn_buf *b)
{
    lua_pushnil(L);
    while (lua_next(L, data)) {
        int vt = lua_type(L, -1);
        if (lua_type(L, -2) != LUA_TSTRING || (vt != LUA_TSTRING && vt != LUA_TNUMBER)) {
            const char *bad = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            lua_pop(L, 2); /* the key stays alive in the table */
            return bad;
        }
        if (b->len) sn_mpack_put_raw(b, "&", 1);
        size_t kn, vn;
        const char *k = lua_tolstring(L, -2, &kn);
        const char *v = lua_tolstring(L, -1, &vn); /* the value is a copy: converting is fine */
        add_escaped(b, k, kn);
        sn_mpack_put_raw(b, "=", 1);
        add_escaped(b, v, vn);
        lua_pop(L, 1);
    }
    return NULL;
}

/* Reads the request table (or URL string) at index 2 into a new request for w. */
static sn_curl_req *read_request(lua_State *L, waiter *w)
{
    if (lua_type(L, 2) == LUA_TSTRING) return sn_curl_req_new(lua_tostring(L, 2), answer, w);
    if (lua_type(L, 2) != LUA_TTABLE)
        return field_error(L, NULL, w,
                           "stage.signal: curl: expected a URL or a request table, got %s%s",
                           luaL_typename(L, 2), "");
    if (raw_field(L, "url") != LUA_TSTRING)
        return field_error(L, NULL, w, "stage.signal: curl: request.url must be a string, got %s%s",
                           luaL_typename(L, -1), "");
    sn_curl_req *q = sn_curl_req_new(lua_tostring(L, -1), answer, w);
    lua_pop(L, 1);
    if (!q) return field_error(L, NULL, w, "stage.signal: curl: %s%s", sn_strerror(SN_ENOMEM), "");
    int t = raw_field(L, "header");
    if (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            int vt = lua_type(L, -1);
            if (lua_type(L, -2) != LUA_TSTRING || (vt != LUA_TSTRING && vt != LUA_TNUMBER))
                return field_error(L, q, w,
                                   "stage.signal: curl: request.header%s%s: expected "
                                   "name = string",
                                   lua_type(L, -2) == LUA_TSTRING ? "." : "",
                                   lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : " key");
            lua_pushvalue(L, -1);
            int rc = sn_curl_req_header(q, lua_tostring(L, -3), lua_tostring(L, -1));
            lua_pop(L, 2);
            if (rc != SN_OK)
                return field_error(L, q, w, "stage.signal: curl: %s%s", sn_strerror(rc), "");
        }
    } else if (t != LUA_TNIL) {
        return field_error(L, q, w, "stage.signal: curl: request.header must be a table, got %s%s",
                           luaL_typename(L, -1), "");
    }
    lua_pop(L, 1);
    t = raw_field(L, "data");
    if (t == LUA_TTABLE) {
        sn_buf b;
        sn_buf_init(&b);
        const char *bad = form_body(L, lua_gettop(L), &b);
        int rc = bad ? SN_EINVAL : sn_curl_req_body(q, b.data ? (const char *)b.data : "", b.len);
        sn_buf_fini(&b);
        if (bad)
            return field_error(L, q, w,
                               "stage.signal: curl: request.data.%s: expected a string or "
                               "a number%s",
                               bad, "");
        if (rc != SN_OK)
            return field_error(L, q, w, "stage.signal: curl: %s%s", sn_strerror(rc), "");
    } else if (t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (sn_curl_req_body(q, s, n) != SN_OK)
            return field_error(L, q, w, "stage.signal: curl: %s%s", sn_strerror(SN_ENOMEM), "");
    } else if (t != LUA_TNIL) {
        return field_error(L, q, w,
                           "stage.signal: curl: request.data must be a string or a table, "
                           "got %s%s",
                           luaL_typename(L, -1), "");
    }
    lua_pop(L, 1);
    t = raw_field(L, "ca");
    if (t == LUA_TSTRING) {
        if (sn_curl_req_ca(q, lua_tostring(L, -1)) != SN_OK)
            return field_error(L, q, w, "stage.signal: curl: %s%s", sn_strerror(SN_ENOMEM), "");
    } else if (t != LUA_TNIL) {
        return field_error(L, q, w, "stage.signal: curl: request.ca must be a file name, got %s%s",
                           luaL_typename(L, -1), "");
    }
    lua_pop(L, 1);
    int bad = 0;
    long timeout = opt_count(L, "timeout", &bad);
    long body = opt_count(L, "max_body", &bad);
    long redirects = opt_count(L, "max_redirects", &bad);
    if (bad)
        return field_error(L, q, w,
                           "stage.signal: curl: request.timeout, max_body and max_redirects "
                           "must be integers >= 0%s%s",
                           "", "");
    sn_curl_req_limit(q, timeout, body, redirects);
    return q;
}

/* The snapshot of {extra = v} without its header and map count: "extra" and v. */
static void read_extra(lua_State *L, waiter *w)
{
    if (lua_type(L, 2) != LUA_TTABLE || raw_field(L, "extra") == LUA_TNIL) {
        if (lua_type(L, 2) == LUA_TTABLE) lua_pop(L, 1);
        return;
    }
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, "extra");
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    sn_buf b;
    sn_buf_init(&b);
    char err[256];
    int rc = sn_snapshot_encode(L, lua_gettop(L), 1, &o, &b, err, sizeof err);
    lua_pop(L, 1);
    if (rc != SN_OK) {
        sn_buf_fini(&b);
        waiter_free(w);
        luaL_error(L, "stage.signal: curl: request.extra: %s", err);
        return;
    }
    /* 01 (version) 91 (one value) 81 (a map of one pair), then the pair */
    if (b.len < 3 || (unsigned char)b.data[1] != 0x91 || (unsigned char)b.data[2] != 0x81 ||
        !(w->extra = malloc(b.len - 3))) {
        sn_buf_fini(&b);
        waiter_free(w);
        luaL_error(L, "stage.signal: curl: request.extra: %s", sn_strerror(SN_ENOMEM));
        return;
    }
    memcpy(w->extra, b.data + 3, b.len - 3);
    w->extra_len = b.len - 3;
    sn_buf_fini(&b);
}

int sn_lua_curl_signal(lua_State *L, const sn_target *t)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_curl *c = host->ctx ? host->ctx->curl : NULL;
    /* "+curl:ID" asks for other nodes only: routed as any stage */
    if (!c || strcmp(t->stage, CURL_STAGE) != 0 || t->mode == SN_TARGET_SELF ||
        t->mode == SN_TARGET_REMOTE || sn_router_count(sn_node_router(host->node), CURL_STAGE) > 0)
        return -1;
    waiter *w = calloc(1, sizeof *w);
    if (!w) return luaL_error(L, "stage.signal: curl: %s", sn_strerror(SN_ENOMEM));
    w->node = host->node;
    w->log = host->log;
    w->actor = host->actor;
    /* STAGE: "curl:ID" answers handler ID, "curl:ID=RID" answers RID */
    snprintf(w->handler, sizeof w->handler, "%s", t->reply[0] ? t->reply : t->msg);
    lua_settop(L, 2);
    read_extra(L, w);
    sn_curl_req *q = read_request(L, w);
    if (!q) {
        waiter_free(w);
        return luaL_error(L, "stage.signal: curl: %s", sn_strerror(SN_ENOMEM));
    }
    if (sn_curl_submit(c, q) != SN_OK) {
        sn_curl_req_destroy(&q);
        waiter_free(w);
        lua_pushinteger(L, 0);
        lua_pushfstring(L, "curl: too many requests in flight (curl_requests = %d)",
                        (int)sn_curl_limits_of(c)->requests);
        return 2;
    }
    lua_pushinteger(L, 1);
    return 1;
}

/* require("curl"): STAGE's request builder, CURL.New(stage_id, url, callback), whose
 * commit() signals "STAGE_ID:ID" with ID a one-shot handler that calls callback(response). */
static const char builder[] =
    "local Request = {}\n"
    "Request.__index = Request\n"
    "function Request:setHeader(k, v)\n"
    "  if type(self.values.header) ~= 'table' then error('setHeader: header is not a table', 2) "
    "end\n"
    "  self.values.header[k] = v\n"
    "  return self\n"
    "end\n"
    "function Request:header(h) self.values.header = h return self end\n"
    "function Request:setPostField(k, v)\n"
    "  if type(self.values.data) ~= 'table' then self.values.data = {} end\n"
    "  self.values.data[k] = v\n"
    "  return self\n"
    "end\n"
    "function Request:post(v) self.values.data = v return self end\n"
    "function Request:extra(v) self.values.extra = v return self end\n"
    "function Request:commit()\n"
    "  local id = '" NO_ANSWER "'\n"
    "  if type(self.callback) == 'function' then\n"
    "    id = stage.waitfor(function(cb, response)\n"
    "      stage.waitfor(_WAITFOR[0], nil)\n"
    "      return cb(response)\n"
    "    end, self.callback)\n"
    "  end\n"
    "  return stage.signal(self.stage .. ':' .. id, self.values)\n"
    "end\n"
    "local CURL = {}\n"
    "function CURL.New(stage_id, url, callback)\n"
    "  return setmetatable({stage = stage_id or 'curl', callback = callback,\n"
    "                       values = {url = url, header = {}}}, Request)\n"
    "end\n"
    "return CURL\n";

static int load_builder(lua_State *L)
{
    if (luaL_loadbufferx(L, builder, sizeof builder - 1, "=curl", "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

void sn_lua_curl_open(lua_State *L)
{
    if (lua_getglobal(L, "package") == LUA_TTABLE && lua_getfield(L, -1, "preload") == LUA_TTABLE) {
        lua_pushcfunction(L, load_builder);
        lua_setfield(L, -2, "curl");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
