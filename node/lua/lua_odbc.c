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
    "local odbc, submit, new_session, stage, error, type, pairs, ipairs, select, tostring,\n"
    "  pcall, math_type, sort, concat, setmetatable, pack, unpack,\n"
    "  co_create, co_resume, co_yield, co_running = ...\n"
    "-- (the values are those the state had when sn_lua_odbc_open ran: see DEPS in\n"
    "-- lua_odbc.c; the chunk is compiled at the first use of odbc, not in every state)\n"
    "\n"
    "\n"
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
    "-- Rows of a keyed fetch, for apply, erase and near. Each table of such a result (the root\n"
    "-- and every level under it) maps to its place in it; the root holds a snapshot of what the\n"
    "-- database held when it was read, and apply writes the difference (docs/lua-api.md).\n"
    "local tracked = setmetatable({}, {__mode = \"k\"})\n"
    "\n"
    "local function snap_of(t, depth, nkeys)\n"
    "  if depth == nkeys then\n"
    "    local v = {}\n"
    "    for c, x in pairs(t) do v[c] = x end\n"
    "    return {t = t, v = v}\n"
    "  end\n"
    "  local c = {}\n"
    "  for k, sub in pairs(t) do\n"
    "    if type(sub) == \"table\" then c[k] = snap_of(sub, depth + 1, nkeys) end\n"
    "  end\n"
    "  return {t = t, c = c}\n"
    "end\n"
    "\n"
    "local function track(root, t, depth, path)\n"
    "  tracked[t] = {root = root, depth = depth, path = path}\n"
    "  if depth < #root.keys then\n"
    "    for k, sub in pairs(t) do\n"
    "      if type(sub) == \"table\" then\n"
    "        local p = {unpack(path)}\n"
    "        p[#p + 1] = k\n"
    "        track(root, sub, depth + 1, p)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function keyed(keys, sql, out)\n"
    "  local root = {keys = {unpack(keys)}, sql = sql}\n"
    "  for _, k in ipairs(keys) do\n"
    "    if k == \"$\" then root.bad = \"row numbers ('$') are no column of the table\" end\n"
    "  end\n"
    "  root.snap = snap_of(out, 0, #keys)\n"
    "  track(root, out, 0, {})\n"
    "end\n"
    "\n"
    "local function by_key(a, b)\n"
    "  local ta, tb = type(a), type(b)\n"
    "  if ta ~= tb then return ta < tb end\n"
    "  if ta == \"number\" or ta == \"string\" then return a < b end\n"
    "  return tostring(a) < tostring(b)\n"
    "end\n"
    "\n"
    "local function sorted(t)\n"
    "  local ks = {}\n"
    "  for k in pairs(t) do ks[#ks + 1] = k end\n"
    "  sort(ks, by_key)\n"
    "  return ks\n"
    "end\n"
    "\n"
    "local function qname(c) return '\"' .. tostring(c):gsub('\"', '\"\"') .. '\"' end\n"
    "\n"
    "local function pathname(path)\n"
    "  local s = {}\n"
    "  for i, k in ipairs(path) do s[i] = \"[\" .. (type(k) == \"string\" and (\"%q\"):format(k) or tostring(k)) .. \"]\" end\n"
    "  return \"rows\" .. concat(s)\n"
    "end\n"
    "\n"
    "local BINDABLE = {[\"nil\"] = true, boolean = true, number = true, string = true}\n"
    "\n"
    "-- The statements that make the database hold cur (a live table at depth, path) where it\n"
    "-- held s; each op is {sql, n, args, log}.\n"
    "local plan\n"
    "\n"
    "local function where_of(keys, path, n)\n"
    "  local w, parts, args = {}, {}, {}\n"
    "  for i = 1, n do\n"
    "    w[keys[i]] = path[i]\n"
    "    parts[i] = qname(keys[i]) .. \" = ?\"\n"
    "    args[i] = path[i]\n"
    "  end\n"
    "  return w, concat(parts, \" AND \"), args\n"
    "end\n"
    "\n"
    "local function check_value(path, c, v)\n"
    "  if type(c) ~= \"string\" then\n"
    "    error(\"apply: \" .. pathname(path) .. \" has a \" .. type(c) .. \" key; a row's keys are column names\", 0)\n"
    "  end\n"
    "  if not BINDABLE[type(v)] then\n"
    "    error(\"apply: \" .. pathname(path) .. \".\" .. c .. \" is a \" .. type(v) ..\n"
    "          \"; a column takes nil, a boolean, a number or a string\", 0)\n"
    "  end\n"
    "end\n"
    "\n"
    "local function insert_all(tbl, keys, t, depth, path, ops)\n"
    "  if depth == #keys then\n"
    "    local row = {}\n"
    "    for c, v in pairs(t) do check_value(path, c, v); row[c] = v end\n"
    "    for i = 1, #keys do row[keys[i]] = path[i] end\n"
    "    local cols, marks, args, value = {}, {}, {}, {}\n"
    "    for i, c in ipairs(sorted(row)) do\n"
    "      cols[i], marks[i], args[i] = qname(c), \"?\", row[c]\n"
    "      value[c] = {n = row[c]}\n"
    "    end\n"
    "    ops[#ops + 1] = {sql = \"INSERT INTO \" .. tbl .. \" (\" .. concat(cols, \", \") .. \") VALUES (\" ..\n"
    "                           concat(marks, \", \") .. \")\", n = #args, args = args,\n"
    "                     log = {table = tbl, action = 4, where = {}, value = value}}\n"
    "    return\n"
    "  end\n"
    "  for _, k in ipairs(sorted(t)) do\n"
    "    local sub = t[k]\n"
    "    local p = {unpack(path)}\n"
    "    p[#p + 1] = k\n"
    "    if type(sub) ~= \"table\" then\n"
    "      error(\"apply: \" .. pathname(p) .. \" is a \" .. type(sub) .. \", expected a table\", 0)\n"
    "    end\n"
    "    insert_all(tbl, keys, sub, depth + 1, p, ops)\n"
    "  end\n"
    "end\n"
    "\n"
    "plan = function (tbl, keys, cur, s, depth, path, ops, merges)\n"
    "  if depth == #keys then\n"
    "    local replaced = cur ~= s.t\n"
    "    local changed = {}\n"
    "    for c, n in pairs(cur) do\n"
    "      check_value(path, c, n)\n"
    "      if n ~= s.v[c] then changed[c] = true end\n"
    "    end\n"
    "    if replaced then\n"
    "      merges[#merges + 1] = {cur, s.v}\n"
    "    else\n"
    "      for c in pairs(s.v) do if cur[c] == nil then changed[c] = true end end\n"
    "    end\n"
    "    local cols = sorted(changed)\n"
    "    if #cols == 0 then return end\n"
    "    local sets, args, value = {}, {}, {}\n"
    "    for i, c in ipairs(cols) do\n"
    "      sets[i], args[i] = qname(c) .. \" = ?\", cur[c]\n"
    "      value[c] = {o = s.v[c], n = cur[c]}\n"
    "    end\n"
    "    local w, wsql, wargs = where_of(keys, path, #keys)\n"
    "    for i, a in ipairs(wargs) do args[#cols + i] = a end\n"
    "    ops[#ops + 1] = {sql = \"UPDATE \" .. tbl .. \" SET \" .. concat(sets, \", \") .. \" WHERE \" .. wsql,\n"
    "                     n = #cols + #keys, args = args,\n"
    "                     log = {table = tbl, action = 2, where = w, value = value}}\n"
    "    return\n"
    "  end\n"
    "  for _, k in ipairs(sorted(s.c)) do\n"
    "    if cur[k] == nil then\n"
    "      local p = {unpack(path)}\n"
    "      p[#p + 1] = k\n"
    "      local w, wsql, args = where_of(keys, p, depth + 1)\n"
    "      local value = {}\n"
    "      if depth + 1 == #keys then\n"
    "        for c, o in pairs(s.c[k].v) do value[c] = {o = o} end\n"
    "      end\n"
    "      ops[#ops + 1] = {sql = \"DELETE FROM \" .. tbl .. \" WHERE \" .. wsql, n = depth + 1,\n"
    "                       args = args, log = {table = tbl, action = 8, where = w, value = value}}\n"
    "    end\n"
    "  end\n"
    "  for _, k in ipairs(sorted(cur)) do\n"
    "    local sub = cur[k]\n"
    "    local p = {unpack(path)}\n"
    "    p[#p + 1] = k\n"
    "    if type(sub) ~= \"table\" then\n"
    "      error(\"apply: \" .. pathname(p) .. \" is a \" .. type(sub) .. \", expected a table\", 0)\n"
    "    end\n"
    "    if s.c[k] == nil then\n"
    "      insert_all(tbl, keys, sub, depth + 1, p, ops)\n"
    "    else\n"
    "      plan(tbl, keys, sub, s.c[k], depth + 1, p, ops, merges)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function table_of(what, sql, name)\n"
    "  if name ~= nil then\n"
    "    if type(name) ~= \"string\" or name == \"\" then\n"
    "      error(what .. \": the table must be a name (a string), got \" .. type(name), 3)\n"
    "    end\n"
    "    return name\n"
    "  end\n"
    "  local t, rest = sql:match(\"[Ff][Rr][Oo][Mm]%s+([%w_%.\\\"]+)(.*)\")\n"
    "  if t == nil or rest:find(\"^%s*,\") or rest:lower():find(\"%f[%w]join%f[%W]\") then\n"
    "    error(what .. \": cannot tell the table from '\" .. sql .. \"'; name it: \" .. what ..\n"
    "          \"(rows, \\\"table\\\")\", 3)\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "\n"
    "-- apply(rows [, table] [, f]) on the adapter adp (ad its state).\n"
    "local function apply_rows(what, ad, adp, t, name, f)\n"
    "  if type(name) == \"function\" then name, f = nil, name end\n"
    "  local m = type(t) == \"table\" and tracked[t]\n"
    "  if not m then\n"
    "    error(what .. \": expected rows from resultset.fetch with key columns (or a table in \" ..\n"
    "          \"them), got \" .. (type(t) == \"table\" and \"a table of another origin\" or type(t)), 2)\n"
    "  end\n"
    "  local root = m.root\n"
    "  if root.bad then error(what .. \": \" .. root.bad .. \"; fetch with key columns\", 2) end\n"
    "  local tbl = table_of(what, root.sql, name)\n"
    "  local s = root.snap\n"
    "  for _, k in ipairs(m.path) do\n"
    "    s = s.c[k]\n"
    "    if s == nil then error(what .. \": these rows were erased from their result and applied\", 2) end\n"
    "  end\n"
    "  local ops, merges = {}, {}\n"
    "  local ok, err = pcall(plan, tbl, root.keys, t, s, m.depth, m.path, ops, merges)\n"
    "  if not ok then error(what .. \": \" .. tostring(err):gsub(\"^apply: \", \"\"), 2) end\n"
    "  if #ops == 0 then return end\n"
    "  local own = not ad.txn\n"
    "  if own then adp.begin() end\n"
    "  ok, err = pcall(function ()\n"
    "    for _, op in ipairs(ops) do adp.execute(op.sql, unpack(op.args, 1, op.n)) end\n"
    "  end)\n"
    "  if not ok then\n"
    "    if own and not ad.closed then pcall(adp.rollback) end\n"
    "    error(what .. \": \" .. tostring(err):gsub(\"^odbc:%d+: \", \"\"), 2)\n"
    "  end\n"
    "  if own then adp.commit() end\n"
    "  -- the database holds what the tables hold now; a row replaced by a table of some of its\n"
    "  -- columns keeps the others, as the database does\n"
    "  for _, mg in ipairs(merges) do\n"
    "    for c, v in pairs(mg[2]) do if mg[1][c] == nil then mg[1][c] = v end end\n"
    "  end\n"
    "  local fresh = snap_of(t, m.depth, #root.keys)\n"
    "  if #m.path == 0 then\n"
    "    root.snap = fresh\n"
    "  else\n"
    "    local parent = root.snap\n"
    "    for i = 1, #m.path - 1 do parent = parent.c[m.path[i]] end\n"
    "    parent.c[m.path[#m.path]] = fresh\n"
    "  end\n"
    "  track(root, t, m.depth, m.path)\n"
    "  local log = {}\n"
    "  for i, op in ipairs(ops) do log[i] = op.log end\n"
    "  if f then return f({}, log) end\n"
    "  return log\n"
    "end\n"
    "\n"
    "local function walk(t, path, n)\n"
    "  for i = 1, n do\n"
    "    if type(t) ~= \"table\" then return nil end\n"
    "    t = t[path[i]]\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "\n"
    "local function rows_arg(what, row)\n"
    "  if type(row) ~= \"table\" then\n"
    "    error(what .. \": expected rows from resultset.fetch (a table), got \" .. type(row), 3)\n"
    "  end\n"
    "end\n"
    "\n"
    "local function erase(row, k)\n"
    "  rows_arg(\"resultset.erase\", row)\n"
    "  if type(k) == \"table\" then\n"
    "    if #k == 0 then return 0 end\n"
    "    local parent = walk(row, k, #k - 1)\n"
    "    if type(parent) ~= \"table\" or parent[k[#k]] == nil then return 0 end\n"
    "    parent[k[#k]] = nil\n"
    "    return 1\n"
    "  end\n"
    "  if k == nil then error(\"resultset.erase: expected a key or a path of keys\", 2) end\n"
    "  if row[k] == nil then return 0 end\n"
    "  row[k] = nil\n"
    "  return 1\n"
    "end\n"
    "\n"
    "local function near(row, k)\n"
    "  rows_arg(\"resultset.near\", row)\n"
    "  if type(k) == \"table\" then return walk(row, k, #k) end\n"
    "  if k == nil then error(\"resultset.near: expected a key or a path of keys\", 2) end\n"
    "  return row[k]\n"
    "end\n"
    "\n"
    "local function resultset(ad, r, sql)\n"
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
    "    if keys ~= nil and #keys > 0 then keyed(keys, sql, out) end\n"
    "    if f then return f(out) end\n"
    "    return out\n"
    "  end\n"
    "  function rs.apply(t, name, f) return apply_rows(\"resultset.apply\", ad, ad.adp, t, name, f) end\n"
    "  rs.erase, rs.near = erase, near\n"
    "  return rs\n"
    "end\n"
    "\n"
    "\n"
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
    "    return resultset(ad, await(ad, EXEC, sql, types, ...), sql)\n"
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
    "  function adp.apply(t, name, f) return apply_rows(\"adapter.apply\", ad, adp, t, name, f) end\n"
    "  ad.adp = adp\n"
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

/* math.type, as Lua 5.3's, for the api chunk: math itself opens at its first use. */
static int l_math_type(lua_State *L)
{
    luaL_checkany(L, 1);
    if (lua_type(L, 1) == LUA_TNUMBER)
        lua_pushstring(L, lua_isinteger(L, 1) ? "integer" : "float");
    else
        lua_pushnil(L);
    return 1;
}

/* What the api chunk takes, in its order after (odbc, submit, new_session): the values the
 * state has when sn_lua_odbc_open runs (before the sandbox wraps coroutine.*), kept as the
 * loader's upvalues so a first use late in an actor's life sees the same ones. */
static const char *const DEPS[][2] = {
    {NULL, "stage"},       {NULL, "error"},     {NULL, "type"},
    {NULL, "pairs"},       {NULL, "ipairs"},    {NULL, "select"},
    {NULL, "tostring"},    {NULL, "pcall"},     {"", "math.type"}, /* C: math opens late */
    {"table", "sort"},     {"table", "concat"}, {NULL, "setmetatable"},
    {"table", "pack"},     {"table", "unpack"}, {"coroutine", "create"},
    {"coroutine", "resume"}, {"coroutine", "yield"}, {"coroutine", "running"},
};
enum { NDEPS = sizeof DEPS / sizeof DEPS[0] };

/* lazy_index, the metatable's __index: compiles and runs the api chunk into the global
 * odbc table (argument 1) at its first use, then answers the key. The chunk is about 500
 * lines and most actors never touch odbc, so compiling it in every new state cost spawn time
 * and memory (issue 17). Its upvalues are DEPS; __newindex and __pairs call it first. */
static int lazy_index(lua_State *L)
{
    if (lua_getmetatable(L, 1)) { /* not defined yet */
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setmetatable(L, 1);
        if (luaL_loadbufferx(L, api, sizeof api - 1, "=odbc", "t") != LUA_OK) lua_error(L);
        lua_pushvalue(L, 1);
        lua_pushcfunction(L, l_submit);
        lua_pushcfunction(L, l_session);
        for (int i = 0; i < NDEPS; i++) lua_pushvalue(L, lua_upvalueindex(1 + i));
        lua_call(L, 3 + NDEPS, 0);
    }
    lua_rawget(L, 1);
    return 1;
}

static void define_through(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1)); /* lazy_index */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_call(L, 2, 0);
}

static int lazy_newindex(lua_State *L)
{
    define_through(L);
    lua_rawset(L, 1);
    return 0;
}

static int lazy_pairs(lua_State *L)
{
    define_through(L);
    lua_getglobal(L, "next");
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void sn_lua_odbc_open(lua_State *L)
{
    lua_newtable(L);          /* the global odbc, filled at its first use */
    lua_createtable(L, 0, 3); /* its metatable, removed then */
    for (int i = 0; i < NDEPS; i++) {
        if (DEPS[i][0] && !DEPS[i][0][0]) {
            lua_pushcfunction(L, l_math_type);
        } else if (DEPS[i][0]) {
            lua_getglobal(L, DEPS[i][0]);
            lua_getfield(L, -1, DEPS[i][1]);
            lua_remove(L, -2);
        } else {
            lua_getglobal(L, DEPS[i][1]);
        }
    }
    lua_pushcclosure(L, lazy_index, NDEPS);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, lazy_newindex, 1);
    lua_setfield(L, -3, "__newindex");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, lazy_pairs, 1);
    lua_setfield(L, -3, "__pairs");
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "odbc");
}
