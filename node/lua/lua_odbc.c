/* lua_odbc: two C functions (submit a job, make a session id) and STAGE's API written in Lua
 * over them. A statement registers a one-shot handler, submits the job naming it and yields
 * the running coroutine; the pool's thread encodes the result as the snapshot of one table
 * (proto/SNAPSHOT.md) straight with sn_mpack and posts it to the actor, whose handler resumes
 * the coroutine. The actor serves its mailbox meanwhile. */
#include "lua_odbc.h"
#include "lua_host.h"
#include "sn_error.h"
#include "sn_mpack.h"
#include "sn_msg.h"
#include "sn_node.h"
#include "sn_odbc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define ODBC_STAGE "odbc"

/* Who waits for the result. */
typedef struct waiter {
    sn_node *node;
    sn_log *log;
    uint64_t actor;
    char handler[128];
} waiter;

static int put_value(sn_buf *b, const sn_odbc_value *v)
{
    switch (v->kind) {
    case SN_ODBC_INT: return sn_mpack_put_int(b, v->i);
    case SN_ODBC_DOUBLE: return sn_mpack_put_double(b, v->d);
    case SN_ODBC_TEXT:
    case SN_ODBC_BLOB: return sn_mpack_put_str(b, v->s, v->len);
    default: return sn_mpack_put_nil(b);
    }
}

static int put_kstr(sn_buf *b, const char *k, const char *v)
{
    return sn_mpack_put_str(b, k, strlen(k)) | sn_mpack_put_str(b, v, strlen(v));
}

/* {error=} or {columns={...}, rows={{name=value...}...}, more=, affected=}; NULL cells are
 * left out of their row. */
static int encode_result(sn_buf *b, const sn_odbc_result *r)
{
    int bad = sn_mpack_put_raw(b, "\x01", 1) | sn_mpack_put_array(b, 1);
    if (r->error) return bad | sn_mpack_put_map(b, 1) | put_kstr(b, "error", r->error);
    bad |= sn_mpack_put_map(b, 4);
    bad |= sn_mpack_put_str(b, "affected", 8) | sn_mpack_put_int(b, r->affected);
    bad |= sn_mpack_put_str(b, "more", 4) | sn_mpack_put_bool(b, r->more);
    bad |= sn_mpack_put_str(b, "columns", 7) | sn_mpack_put_array(b, (uint32_t)r->ncols);
    for (int i = 0; i < r->ncols; i++)
        bad |= sn_mpack_put_str(b, r->names[i], strlen(r->names[i]));
    bad |= sn_mpack_put_str(b, "rows", 4) | sn_mpack_put_array(b, (uint32_t)r->nrows);
    for (size_t row = 0; row < r->nrows; row++) {
        const sn_odbc_value *cells = r->cells + row * (size_t)r->ncols;
        uint32_t n = 0;
        for (int i = 0; i < r->ncols; i++)
            n += cells[i].kind != SN_ODBC_NULL;
        bad |= sn_mpack_put_map(b, n);
        for (int i = 0; i < r->ncols; i++)
            if (cells[i].kind != SN_ODBC_NULL)
                bad |= sn_mpack_put_str(b, r->names[i], strlen(r->names[i])) |
                       put_value(b, &cells[i]);
    }
    return bad ? SN_ENOMEM : SN_OK;
}

/* sn_odbc's done: a pool thread. */
static void answer(void *ud, const sn_odbc_result *r)
{
    waiter *w = ud;
    if (r) {
        sn_buf b;
        sn_buf_init(&b);
        int rc = encode_result(&b, r);
        sn_msg *m = rc == SN_OK
                        ? sn_msg_new(SN_MSG_SIGNAL, w->handler, NULL, ODBC_STAGE, b.data, b.len)
                        : NULL;
        sn_buf_fini(&b);
        rc = m ? sn_node_post(w->node, w->actor, m, 1) : SN_ENOMEM;
        if (rc != SN_OK) {
            sn_msg_destroy(&m);
            sn_log_write(w->log, rc == SN_ECLOSED ? SN_LOG_DEBUG : SN_LOG_WARN, "odbc",
                         "result for actor %llu lost: %s", (unsigned long long)w->actor,
                         sn_strerror(rc));
        }
    }
    free(w);
}

static sn_odbc *driver(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_odbc *o = host->ctx ? host->ctx->odbc : NULL;
    if (!o) luaL_error(L, "odbc: not available in this state (no database driver on this node)");
    /* a job's state is not the actor's: the coroutine waiting there would be gone when the
     * result arrives */
    if (sn_lua_host_of(L)->job)
        luaL_error(L, "odbc: not in a job (stage.submit, thread.new): the result comes back to "
                   "an actor; send the work to one with stage.signal");
    return o;
}

/* submit(op, session, conn, sql|nil, handler, timeout_ms, types|nil, n, v1..vn):
 * true, or nil and why (the pool is exhausted). Raises on a value that cannot be bound. */
static int l_submit(lua_State *L)
{
    sn_odbc *o = driver(L);
    sn_lua_host *host = sn_lua_host_of(L);
    int op = (int)luaL_checkinteger(L, 1);
    uint64_t session = (uint64_t)luaL_checkinteger(L, 2);
    const char *conn = luaL_checkstring(L, 3);
    const char *sql = luaL_optstring(L, 4, NULL);
    const char *handler = luaL_checkstring(L, 5);
    long timeout = (long)luaL_optinteger(L, 6, 0);
    size_t ntypes = 0;
    const char *types = luaL_optlstring(L, 7, "", &ntypes);
    int n = (int)luaL_checkinteger(L, 8);
    for (int i = 0; i < n; i++) {
        int t = lua_type(L, 9 + i);
        if (t != LUA_TNIL && t != LUA_TNUMBER && t != LUA_TSTRING && t != LUA_TBOOLEAN)
            return luaL_error(L, "adapter.execute: parameter %d: a %s cannot be bound (nil, "
                              "boolean, number or string)", i + 1, lua_typename(L, t));
    }
    waiter *w = calloc(1, sizeof *w);
    sn_odbc_job *j = w ? sn_odbc_job_new((sn_odbc_op)op, session, conn, sql, n, answer, w) : NULL;
    if (!j) {
        free(w);
        return luaL_error(L, "odbc: %s", sn_strerror(SN_ENOMEM));
    }
    w->node = host->node;
    w->log = host->log;
    w->actor = host->actor;
    snprintf(w->handler, sizeof w->handler, "%s", handler);
    sn_odbc_job_timeout(j, timeout);
    for (int i = 0; i < n; i++) {
        int idx = 9 + i;
        sn_odbc_value v = {.kind = SN_ODBC_NULL, .type = (size_t)i < ntypes ? types[i] : 0};
        switch (lua_type(L, idx)) {
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx)) {
                v.kind = SN_ODBC_INT;
                v.i = (int64_t)lua_tointeger(L, idx);
            } else {
                v.kind = SN_ODBC_DOUBLE;
                v.d = (double)lua_tonumber(L, idx);
            }
            break;
        case LUA_TBOOLEAN:
            v.kind = SN_ODBC_INT;
            v.i = lua_toboolean(L, idx);
            break;
        case LUA_TSTRING:
            v.kind = v.type == 'B' ? SN_ODBC_BLOB : SN_ODBC_TEXT;
            v.s = (char *)lua_tolstring(L, idx, &v.len);
            break;
        default: break;
        }
        if (sn_odbc_job_param(j, i, &v) != SN_OK) {
            sn_odbc_job_destroy(&j);
            free(w);
            return luaL_error(L, "odbc: %s", sn_strerror(SN_ENOMEM));
        }
    }
    char err[256];
    if (sn_odbc_submit(o, j, err, sizeof err) != SN_OK) {
        sn_odbc_job_destroy(&j);
        free(w);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_session(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sn_odbc_session(driver(L)));
    return 1;
}

/* STAGE's API over submit and session (docs/lua-api.md, "Databases: odbc"). */
static const char api[] =
    "local submit, new_session = ...\n"
    "local stage, error, type, pairs, ipairs, select, tostring = stage, error, type, pairs, ipairs, select, tostring\n"
    "local pcall, math_type, sort, concat = pcall, math.type, table.sort, table.concat\n"
    "local pack, unpack = table.pack, table.unpack\n"
    "local co_create, co_resume, co_yield, co_running = coroutine.create, coroutine.resume,\n"
    "  coroutine.yield, coroutine.running\n"
    "local EXEC, FETCH, BEGIN, COMMIT, ROLLBACK, CLOSE = 0, 1, 2, 3, 4, 5\n"
    "\n"
    "-- One round trip: a one-shot handler resumes this coroutine with the result table.\n"
    "local function await(ad, op, sql, types, ...)\n"
    "  local co, main = co_running()\n"
    "  if main then\n"
    "    error(\"odbc: the adapter waits for the database: use it inside odbc.new's function \" ..\n"
    "          \"(a coroutine), not directly in a handler or at the top level\", 3)\n"
    "  end\n"
    "  if ad.closed then error(\"odbc: the adapter is closed\", 3) end\n"
    "  local id\n"
    "  id = stage.waitfor(function (r)\n"
    "    stage.waitfor(id, nil)\n"
    "    local ok, err = co_resume(co, r)\n"
    "    if not ok then error(err, 0) end\n"
    "  end)\n"
    "  local ok, why = submit(op, ad.session, ad.conn, sql, id, ad.timeout, types,\n"
    "                         select('#', ...), ...)\n"
    "  if not ok then\n"
    "    stage.waitfor(id, nil)\n"
    "    error(\"odbc: \" .. why, 3)\n"
    "  end\n"
    "  local r = co_yield()\n"
    "  if r.error then error(\"odbc: \" .. r.error, 3) end\n"
    "  return r\n"
    "end\n"
    "\n"
    "local function quote(v)\n"
    "  v = tostring(v)\n"
    "  if v:find(\"[;{}]\") then return \"{\" .. v:gsub(\"}\", \"}}\") .. \"}\" end\n"
    "  return v\n"
    "end\n"
    "\n"
    "-- The ODBC connection string of s, and the adapter's options (\".executeTimeout\").\n"
    "local function connection(s)\n"
    "  if type(s) == \"string\" then\n"
    "    if s == \"\" then error(\"odbc.new: empty connection string\", 3) end\n"
    "    if not s:find(\"=\", 1, true) then return \"DSN=\" .. s, {} end\n"
    "    return s, {}\n"
    "  elseif type(s) == \"table\" then\n"
    "    local keys, opts = {}, {}\n"
    "    for k, v in pairs(s) do\n"
    "      if type(k) ~= \"string\" then error(\"odbc.new: connection table keys must be strings\", 3) end\n"
    "      if k:sub(1, 1) == \".\" then opts[k] = v else keys[#keys + 1] = k end\n"
    "    end\n"
    "    sort(keys)\n"
    "    local parts = {}\n"
    "    for i, k in ipairs(keys) do parts[i] = k .. \"=\" .. quote(s[k]) end\n"
    "    if #parts == 0 then error(\"odbc.new: the connection table names no key\", 3) end\n"
    "    return concat(parts, \";\"), opts\n"
    "  end\n"
    "  error(\"odbc.new: expected a connection string or table, got \" .. type(s), 3)\n"
    "end\n"
    "\n"
    "local function resultset(ad, r)\n"
    "  local rs = {columns = r.columns or {}, affected = r.affected}\n"
    "  local pending, more = r.rows or {}, r.more\n"
    "  -- the next batch of rows (a sequence), nil after the last\n"
    "  function rs.next()\n"
    "    if pending then\n"
    "      local b = pending\n"
    "      pending = nil\n"
    "      if #b > 0 or not more then return (#b > 0) and b or nil end\n"
    "    end\n"
    "    if not more then return nil end\n"
    "    local n = await(ad, FETCH)\n"
    "    more = n.more\n"
    "    local rows = n.rows or {}\n"
    "    if #rows == 0 then return nil end\n"
    "    return rows\n"
    "  end\n"
    "  function rs.fetch(keys, f)\n"
    "    if type(keys) == \"function\" then keys, f = nil, keys end\n"
    "    if type(keys) == \"string\" then keys = {keys} end\n"
    "    if keys ~= nil and type(keys) ~= \"table\" then\n"
    "      error(\"resultset.fetch: expected a column name or a list of them, got \" .. type(keys), 2)\n"
    "    end\n"
    "    local rows = {}\n"
    "    for b in rs.next do\n"
    "      for _, row in ipairs(b) do rows[#rows + 1] = row end\n"
    "    end\n"
    "    local out\n"
    "    if keys == nil or #keys == 0 then\n"
    "      out = rows[#rows] -- as STAGE: without keys, the last row\n"
    "    else\n"
    "      out = {}\n"
    "      for i, row in ipairs(rows) do\n"
    "        local t = out\n"
    "        for k = 1, #keys do\n"
    "          local v = keys[k] == \"$\" and (i - 1) or row[keys[k]]\n"
    "          if v == nil then\n"
    "            error(\"resultset.fetch: row \" .. (i - 1) .. \" has no value for '\" ..\n"
    "                  tostring(keys[k]) .. \"'\", 2)\n"
    "          end\n"
    "          if k == #keys then\n"
    "            t[v] = row\n"
    "          else\n"
    "            if t[v] == nil then t[v] = {} end\n"
    "            t = t[v]\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if f then return f(out) end\n"
    "    return out\n"
    "  end\n"
    "  return rs\n"
    "end\n"
    "\n"
    "local odbc = {}\n"
    "\n"
    "function odbc.new(s, fn)\n"
    "  if type(s) == \"function\" or s == nil then\n"
    "    error(\"odbc.new: name the data source (a connection string or table); there is no \" ..\n"
    "          \"default %odbc\", 2)\n"
    "  end\n"
    "  local conn, opts = connection(s)\n"
    "  local timeout = opts[\".executeTimeout\"]\n"
    "  if timeout ~= nil and math_type(timeout) ~= \"integer\" then\n"
    "    error(\"odbc.new: .executeTimeout must be an integer (ms)\", 2)\n"
    "  end\n"
    "  local ad = {session = new_session(), conn = conn, timeout = timeout}\n"
    "  local adp = {}\n"
    "  function adp.execute(q, ...)\n"
    "    local sql, types = q, nil\n"
    "    if type(q) == \"table\" then\n"
    "      sql = q[1]\n"
    "      local t = {}\n"
    "      for i = 2, #q do t[i - 1] = tostring(q[i]):sub(1, 1) end\n"
    "      types = concat(t)\n"
    "    end\n"
    "    if type(sql) ~= \"string\" then\n"
    "      error(\"adapter.execute: expected SQL text or {sql, type...}, got \" .. type(sql), 2)\n"
    "    end\n"
    "    return resultset(ad, await(ad, EXEC, sql, types, ...))\n"
    "  end\n"
    "  function adp.commit()\n"
    "    await(ad, COMMIT)\n"
    "    ad.txn = false\n"
    "  end\n"
    "  function adp.rollback()\n"
    "    await(ad, ROLLBACK)\n"
    "    ad.txn = false\n"
    "  end\n"
    "  function adp.begin(f)\n"
    "    await(ad, BEGIN)\n"
    "    ad.txn = true\n"
    "    if f == nil then return end\n"
    "    local res = pack(pcall(f, adp))\n"
    "    if ad.txn and not ad.closed then\n"
    "      if res[1] and res[2] then adp.commit() else adp.rollback() end\n"
    "    end\n"
    "    if not res[1] then error(res[2], 0) end\n"
    "    return unpack(res, 2, res.n)\n"
    "  end\n"
    "  function adp.close()\n"
    "    if ad.closed then return end\n"
    "    await(ad, CLOSE)\n"
    "    ad.closed = true\n"
    "  end\n"
    "  function adp.apply()\n"
    "    error(\"adapter.apply: not built in stage-node (write the UPDATE with bound parameters)\", 2)\n"
    "  end\n"
    "  if fn == nil then return adp end\n"
    "  local function body()\n"
    "    local res = pack(pcall(fn, adp))\n"
    "    if not ad.closed then\n"
    "      if not res[1] and ad.txn then pcall(adp.rollback) end\n"
    "      pcall(adp.close)\n"
    "    end\n"
    "    if not res[1] then error(res[2], 0) end\n"
    "    return unpack(res, 2, res.n)\n"
    "  end\n"
    "  local _, main = co_running()\n"
    "  if not main then return body() end\n"
    "  local co = co_create(body)\n"
    "  local ok, err = co_resume(co)\n"
    "  if not ok then error(err, 0) end\n"
    "end\n"
    "\n"
    "local cache = {}\n"
    "\n"
    "function odbc.cache(name, f)\n"
    "  if name == nil then error(\"odbc.cache: expected a name\", 2) end\n"
    "  local v = cache[name]\n"
    "  if v == nil and f ~= nil then\n"
    "    v = f()\n"
    "    cache[name] = v\n"
    "  end\n"
    "  return v\n"
    "end\n"
    "\n"
    "function odbc.purge(names)\n"
    "  if names == nil then\n"
    "    cache = {}\n"
    "  elseif type(names) == \"table\" then\n"
    "    for _, k in ipairs(names) do cache[k] = nil end\n"
    "  else\n"
    "    cache[names] = nil\n"
    "  end\n"
    "end\n"
    "\n"
    "return odbc\n";

void sn_lua_odbc_open(lua_State *L)
{
    if (luaL_loadbufferx(L, api, sizeof api - 1, "=odbc", "t") != LUA_OK) lua_error(L);
    lua_pushcfunction(L, l_submit);
    lua_pushcfunction(L, l_session);
    lua_call(L, 2, 1);
    lua_setglobal(L, "odbc");
}
