-- STAGE's built-in stages, written on the public API (docs/stages.md). Each is the body of
-- an actor: stage.builtin[name] is spawned as stage `name` on the node that first signals
-- it (node/lua/lua_builtin.c), or by a script: stage.spawn("index", stage.builtin.index).
-- Requests arrive at the "@" handler; _WAITFOR[0] is the message id (the command).
-- Every state runs this file, and few use what it defines: the definitions are compiled at
-- their first use (stage.builtin.NAME, pairs(stage.builtin), stage.actor), not at each spawn,
-- which saves every actor their bytecode (~40 KiB) and the compile time (issue 17). They sit
-- in a long comment, which the parser skips without keeping (as a string they cost every
-- actor 22 KB until first use); define() reads them back from this file. The functions are
-- the same, with the same chunk name and line numbers, and the same globals.
--[==[
stage.builtin = stage.builtin or {}

-- stage.builtin.limits(name, defaults): defaults, each overridden by --set NAME.KEY=N
-- (process["$NAME.KEY"]); logged once at the stage's start, so the limits in force are known.
function stage.builtin.limits(name, defaults)
  local out, said = {}, {}
  for k, v in pairs(defaults) do
    out[k] = process["$" .. name .. "." .. k] or v
    said[#said + 1] = k .. "=" .. out[k]
  end
  table.sort(said)
  io.stderr:write(name, ": limits ", table.concat(said, " "), "\n")
  return out
end

-- index: ranking boards. "CMD?BOARD[/TIER]" with one argument, the answer is the reply
-- (`=rid`); any id without '?' carries a batch {["#SEQ.CMD:BOARD/TIER"] = arg, ...}, answered
-- as one table with the same keys. CMD: get, set, del, forEach, range, total (or their
-- first letter). TIER is 1..4 (default 1); "BOARD/" means every tier.
function stage.builtin.index()
  local LIMITS = stage.builtin.limits("index",
    {boards = 1024, keys = 10000000, key_bytes = 1024, batch = 10000})
  local boards, values = {}, {} -- board name -> stage.rank; board name -> {key = value}
  local warned = {}

  local function limit_hit(what, text)
    if not warned[what] then
      warned[what] = true
      io.stderr:write("index: limit reached: ", text, "\n")
    end
    error(text, 0)
  end

  local function board(name, create)
    local b = boards[name]
    if not b and create then
      local n = 0
      for _ in pairs(boards) do n = n + 1 end
      if n >= LIMITS.boards then
        limit_hit("boards", string.format("index: too many boards (limit %d)", LIMITS.boards))
      end
      b = stage.rank(LIMITS.keys)
      boards[name], values[name] = b, {}
    end
    return b
  end

  local function check_key(where, k)
    if type(k) ~= "string" or k == "" then
      error(string.format("%s: a key must be a non-empty string, got %s", where, type(k)), 0)
    end
    if #k > LIMITS.key_bytes then
      error(string.format("%s: key of %d bytes, longer than %d", where, #k, LIMITS.key_bytes), 0)
    end
    return k
  end

  local function score_of(where, s)
    local i = math.tointeger(s)
    if i == nil then
      error(string.format("%s: a score must be an integer, got %s", where,
        type(s) == "number" and tostring(s) or type(s)), 0)
    end
    return i
  end

  local function keys_of(where, arg)
    if type(arg) == "string" then return {arg} end
    if type(arg) ~= "table" then
      error(string.format("%s: expected a key or a list of keys, got %s", where, type(arg)), 0)
    end
    for i, k in ipairs(arg) do check_key(string.format("%s: key %d", where, i), k) end
    return arg
  end

  local cmds = {}

  function cmds.set(where, name, tier, arg)
    if type(arg) ~= "table" then
      error(where .. ": expected {KEY = {i = score, v = value, I = {scores}}}, got " .. type(arg), 0)
    end
    local plan = {} -- validated first: a bad entry changes nothing
    for k, e in pairs(arg) do
      local w = where .. " '" .. tostring(k) .. "'"
      check_key(w, k)
      if type(e) ~= "table" then error(w .. ": expected {i =, v =, I =}, got " .. type(e), 0) end
      local scores = {}
      if e.i ~= nil then
        if tier == nil then error(w .. ": 'i' needs one tier (BOARD/N), not every tier", 0) end
        scores[tier] = score_of(w .. ".i", e.i)
      end
      if e.I ~= nil then
        if type(e.I) ~= "table" then error(w .. ".I: expected a list of scores, got " .. type(e.I), 0) end
        for t, s in pairs(e.I) do
          if math.type(t) ~= "integer" or t < 1 or t > 4 then
            error(w .. ".I: tier " .. tostring(t) .. " out of 1..4", 0)
          end
          scores[t] = score_of(w .. ".I[" .. t .. "]", s)
        end
      end
      plan[#plan + 1] = {k, scores, e.v}
    end
    local b, out = board(name, true), {}
    for _, p in ipairs(plan) do
      local k, scores, v = p[1], p[2], p[3]
      local ok, why = b:touch(k)
      if not ok then limit_hit("keys", string.format("%s: board '%s' is full (%s, limit %d)",
        where, name, why, LIMITS.keys)) end
      local rank = -1
      for t, s in pairs(scores) do
        local r = b:set(t, k, s)
        if t == (tier or 1) then rank = r end
      end
      if v ~= nil then values[name][k] = v end
      out[k] = rank
    end
    return out
  end

  function cmds.get(where, name, tier, arg)
    local b, out = board(name), {}
    for _, k in ipairs(keys_of(where, arg)) do
      local e = {}
      if b and b:has(k) then
        e.v = values[name][k]
        if tier then
          local s, d = b:get(tier, k)
          e.I = s and {{d = d, i = s}} or nil
        else
          e.I = {}
          for t = 1, 4 do e.I[t] = b:get(t, k) end
        end
      end
      out[k] = e
    end
    return out
  end

  function cmds.del(where, name, tier, arg)
    local b, out = board(name), {}
    for _, k in ipairs(keys_of(where, arg)) do
      if not b then
        out[k] = false
      elseif tier then
        out[k] = b:unset(tier, k)
      else
        out[k] = b:remove(k)
        if out[k] then values[name][k] = nil end
      end
    end
    return out
  end

  local function walk(where, name, tier, from, count)
    local b = board(name)
    if not b then return {} end
    count = count == nil and 0 or math.tointeger(count)
    if count == nil then error(where .. ": the count must be an integer", 0) end
    if count < 1 then count = 1 end -- STAGE: 0 reads the first entry only
    if count > LIMITS.batch then
      error(string.format("%s: count %d over the limit %d", where, count, LIMITS.batch), 0)
    end
    return b:walk(tier or 1, from, count, values[name])
  end

  function cmds.forEach(where, name, tier, arg)
    if type(arg) ~= "table" then error(where .. ": expected {start, count}, got " .. type(arg), 0) end
    local start = math.tointeger(arg[1])
    if start == nil then error(where .. ": the start rank must be an integer", 0) end
    return walk(where, name, tier, start, arg[2])
  end

  function cmds.range(where, name, tier, arg)
    if type(arg) ~= "table" then
      error(where .. ": expected {score, count} or {key, delta, count}, got " .. type(arg), 0)
    end
    local b = board(name)
    if not b then return {} end
    local t = tier or 1
    if type(arg[1]) == "string" then
      local _, d = b:get(t, arg[1])
      if not d then return {} end
      local delta = arg[2] == nil and 0 or math.tointeger(arg[2])
      if delta == nil then error(where .. ": the delta must be an integer", 0) end
      local from = d - delta
      return walk(where, name, tier, from < 1 and 1 or from, arg[3])
    end
    local s = math.tointeger(arg[1])
    if s == nil then error(where .. ": expected a score or a key first, got " .. type(arg[1]), 0) end
    return walk(where, name, tier, b:lower(t, s), arg[2])
  end

  function cmds.total(_, name, tier)
    local b = board(name)
    if not b then return 0 end
    return tier and b:count(tier) or b:keys()
  end

  -- One key in one tier, and entries {i = integer [, v =]} on a board that exists: answered
  -- in C (node/lua/lua_rank.c), which gives up on any other form; the general path above
  -- answers that, and says what is wrong (its error positions stay where they were).
  local get, set = cmds.get, cmds.set
  function cmds.get(where, name, tier, arg)
    local b = tier and type(arg) == "string" and boards[name]
    local out = b and b:answer_get(tier, arg, values[name])
    if out then return out end
    return get(where, name, tier, arg)
  end
  function cmds.set(where, name, tier, arg)
    local b = tier and type(arg) == "table" and boards[name]
    local out = b and b:answer_set(tier, arg, values[name], LIMITS.key_bytes)
    if out then return out end
    return set(where, name, tier, arg)
  end

  local short = {g = "get", s = "set", d = "del", f = "forEach", r = "range", t = "total"}

  -- "#SEQ.CMD?BOARD/TIER" or "CMD:BOARD/TIER" -> {command, board, tier, "index: " .. id}.
  -- Parsed once per id: a script sends the same few ids over and over, and the patterns
  -- cost more than the ranking (docs/benchmarks-notes.md); the cache is emptied when full.
  local parsed, nparsed, PARSED_MAX = {}, 0, 4096
  local function parse(id, keep)
    local p = parsed[id]
    if p then return p end
    local cmd, name = id:match("^[^.]*%.?([%a]+)[?:](.+)$")
    if not cmd then
      error(string.format("index: '%s' is not CMD?BOARD[/TIER]", id), 0)
    end
    cmd = short[cmd] or cmd
    local f = cmds[cmd]
    if not f then error(string.format("index: '%s': unknown command '%s'", id, cmd), 0) end
    local tier = 1
    local base, t = name:match("^(.-)/(%d*)$")
    if base then
      name = base
      tier = t == "" and nil or tonumber(t)
      if tier == 0 and cmd == "del" then tier = nil end
      if tier ~= nil and (tier < 1 or tier > 4) then
        error(string.format("index: '%s': tier %s out of 1..4", id, t), 0)
      end
    end
    if name == "" then error(string.format("index: '%s': empty board name", id), 0) end
    p = {f, name, tier, "index: " .. id}
    if keep then -- a message id (never a batch's key: a batch id is another message id)
      if nparsed >= PARSED_MAX then parsed, nparsed = {}, 0 end
      parsed[id], nparsed = p, nparsed + 1
    end
    return p
  end

  local function run(id, arg, keep)
    local p = parse(id, keep)
    return p[1](p[4], p[2], p[3], arg)
  end

  local function batch(id, arg)
    if type(arg) ~= "table" then
      error(string.format("index: batch '%s': expected a table of commands, got %s", id, type(arg)), 0)
    end
    local order = {}
    for k in pairs(arg) do
      if type(k) ~= "string" then error("index: batch '" .. id .. "': a command id must be a string", 0) end
      order[#order + 1] = k
    end
    if #order > LIMITS.batch then
      limit_hit("batch", string.format("index: batch of %d commands over the limit %d", #order, LIMITS.batch))
    end
    table.sort(order, function(a, b) -- "#SEQ." in SEQ order, as STAGE runs them
      local x, y = tonumber(a:match("^#(%d+)")) or math.huge, tonumber(b:match("^#(%d+)")) or math.huge
      if x ~= y then return x < y end
      return a < b
    end)
    local out = {}
    for _, k in ipairs(order) do out[k] = run(k, arg[k]) end
    return out
  end

  local function serve(id, arg)
    if id:find("?", 1, true) then return run(id, arg, true) end
    return batch(id, arg)
  end

  stage.waitfor("@", function(arg)
    local id = _WAITFOR[0]
    local p = parsed[id]
    local ok, result
    if p then -- the common case: an id seen before, one command
      ok, result = pcall(p[1], p[4], p[2], p[3], arg)
    else
      ok, result = pcall(serve, id, arg)
    end
    if not ok then
      io.stderr:write(tostring(result), "\n")
      return nil, result
    end
    return result
  end)
end

-- route: topics and subscribers. "@" with {TOPIC = CALLBACK} subscribes the sender's stage
-- (CALLBACK false/"" unsubscribes; a non-table clears the sender's subscriptions).
-- "*TOPIC" sends the value to every subscriber, "TOPIC" offers it to one (round-robin over
-- those whose stage still has a route); "!FAIL" after the topic names the publisher's
-- handler that gets (topic, value...) when nobody took it. Topics match hierarchically:
-- "a.b.c" reaches subscribers of "a.b.c", else "a.b.", else "a.". Subscribers get
-- (topic, value...) at STAGE:CALLBACK.
function stage.builtin.route()
  local LIMITS = stage.builtin.limits("route", {topics = 100000, per_topic = 10000})
  local subs, ntopics, turn = {}, 0, {} -- topic -> {stage = callback}

  local function subscribe(who, arg)
    if type(arg) ~= "table" then
      for t, s in pairs(subs) do
        s[who] = nil
        if next(s) == nil then subs[t], ntopics = nil, ntopics - 1 end
      end
      return true
    end
    for topic, cb in pairs(arg) do
      if type(topic) ~= "string" or topic == "" then
        error("route: subscribe: a topic must be a non-empty string, got " .. type(topic), 0)
      end
      if cb and cb ~= "" and type(cb) ~= "string" then
        error("route: subscribe '" .. topic .. "': the callback must be a handler id (string), got " .. type(cb), 0)
      end
    end
    local new = 0 -- the limits are checked before anything changes
    for topic, cb in pairs(arg) do
      local s = subs[topic]
      if cb and cb ~= "" then
        if not s then new = new + 1 end
        local n = 0
        for _ in pairs(s or {}) do n = n + 1 end
        if s and not s[who] and n >= LIMITS.per_topic then
          error(string.format("route: topic '%s' has too many subscribers (limit %d)", topic, LIMITS.per_topic), 0)
        end
      end
    end
    if ntopics + new > LIMITS.topics then
      error(string.format("route: too many topics (limit %d)", LIMITS.topics), 0)
    end
    for topic, cb in pairs(arg) do
      local s = subs[topic]
      if cb and cb ~= "" then
        if not s then
          s, ntopics = {}, ntopics + 1
          subs[topic] = s
        end
        s[who] = cb
      elseif s then
        s[who] = nil
        if next(s) == nil then subs[topic], ntopics = nil, ntopics - 1 end
      end
    end
    return true
  end

  local function find(topic)
    if subs[topic] then return subs[topic], topic end
    local p = topic
    while true do
      p = p:match("^(.*)%.[^.]*$")
      if not p then return nil end
      if subs[p .. "."] then return subs[p .. "."], p .. "." end
    end
  end

  stage.waitfor("@", function(...)
    local id, from = _WAITFOR[0], _WAITFOR[1]
    local ok, r = pcall(function(...)
      if id == "@" then return subscribe(from.stage, ...) end
      local all = id:sub(1, 1) == "*"
      local topic, fail = (all and id:sub(2) or id):match("^([^?!]*)[^!]*!?(.*)$")
      if topic == "" then error("route: '" .. id .. "': empty topic", 0) end
      local s, matched = find(topic)
      local sent = 0
      if s then
        local order = {}
        for who in pairs(s) do order[#order + 1] = who end
        table.sort(order)
        local start = (turn[matched] or 0) % #order
        for i = 1, #order do
          local who = order[(start + i - 1) % #order + 1]
          local cb = s[who]
          local target = cb:find(":", 1, true) and cb or (who .. ":" .. cb)
          if stage.signal(target, topic, ...) > 0 then
            sent = sent + 1
            if not all then turn[matched] = start + i; break end
          end
        end
      end
      if sent == 0 and fail ~= "" then
        stage.signal(from.stage .. ":" .. fail, topic, ...)
      end
      return sent
    end, ...)
    if not ok then
      io.stderr:write(tostring(r), "\n")
      return nil, r
    end
    return r
  end)
end

-- ticket: admission control. "@CATEGORY" with {LIMIT [, OPEN_MS]} makes (or resizes) a
-- category of |LIMIT| tickets (LIMIT > 0: requests wait in a queue; < 0: refused when
-- none is free). "CATEGORY=CALLBACK" with a value asks for a ticket: the reply is true
-- (granted now), "@ID" (queued) or false (refused); the grant arrives at the sender's
-- CALLBACK as (value, "@ID") and asks for a reply: a positive number of ms extends the
-- ticket, 0 or false releases it. "@ID" with ms does the same at any time. A ticket not
-- extended within 1000 ms goes back to the category and the next waiter gets it.
function stage.builtin.ticket()
  local LIMITS = stage.builtin.limits("ticket", {categories = 10000, waiters = 10000, hold_ms = 1000})
  local cats, ncats, tickets, seq = {}, 0, {}, 0

  local function clock() return process.tick * 1000 end

  local grant
  local function release(tid)
    local t = tickets[tid]
    if not t then return false end
    tickets[tid] = nil
    local c = cats[t.cat]
    if t.held then c.free = c.free + 1 end
    for i, w in ipairs(c.queue) do if w == tid then table.remove(c.queue, i) break end end
    while c.free > 0 and #c.queue > 0 do grant(table.remove(c.queue, 1)) end
    return true
  end

  local function arm(tid, ms)
    local t = tickets[tid]
    t.expire = clock() + ms
    stage.addtask(ms, function()
      local x = tickets[tid]
      if x and clock() >= x.expire - 1 then
        io.stderr:write("ticket: ", tid, " of '", x.cat, "' expired unreleased\n")
        release(tid)
      end
    end)
  end

  grant = function(tid)
    local t = tickets[tid]
    local c = cats[t.cat]
    c.free = c.free - 1
    t.held = true
    arm(tid, LIMITS.hold_ms)
    stage.signal(t.callback .. "=" .. tid, t.value, tid)
  end

  stage.waitfor("@", function(arg, ...)
    local id, from = _WAITFOR[0], _WAITFOR[1]
    local reply = _WAITFOR[2] and _WAITFOR[2].id
    local ok, r = pcall(function()
      if id:sub(1, 1) == "@" and tickets[id] then -- extend or release
        if arg == nil then return true end -- an empty answer: the ticket expires by itself
        local ms = math.tointeger(arg)
        if arg and ms == nil then error("ticket: '" .. id .. "': expected ms (integer), got " .. type(arg), 0) end
        if ms and ms > 0 then arm(id, ms) return true end
        return release(id)
      elseif id:sub(1, 1) == "@" and type(arg) == "table" then -- a category
        local name, limit, open = id:sub(2), math.tointeger(arg[1]), arg[2]
        if name == "" then error("ticket: '@': empty category name", 0) end
        if limit == nil then error("ticket: '" .. id .. "': [1] must be the number of tickets (integer)", 0) end
        local c = cats[name]
        if not c then
          if ncats >= LIMITS.categories then
            error(string.format("ticket: too many categories (limit %d)", LIMITS.categories), 0)
          end
          c, ncats = {free = 0, max = 0, queue = {}}, ncats + 1
          cats[name] = c
        end
        c.free = c.free + (math.abs(limit) - c.max)
        c.max, c.wait = math.abs(limit), limit > 0
        while c.free > 0 and #c.queue > 0 do grant(table.remove(c.queue, 1)) end
        return true
      elseif id:sub(1, 1) == "@" then
        if arg == 0 or arg == false or math.type(arg) == "integer" then return false end -- gone
        error("ticket: '" .. id .. "': expected {LIMIT, OPEN_MS}", 0)
      end
      local function ask(c, cat, cb, value) -- true: granted, "@ID": queued, false: refused
        seq = seq + 1
        local tid = string.format("@%x", seq)
        tickets[tid] = {cat = cat, value = value,
          callback = cb:find(":", 1, true) and cb or (from.stage .. ":" .. cb)}
        if c.free > 0 then grant(tid) return true end
        if not c.wait then tickets[tid] = nil return false end
        if #c.queue >= LIMITS.waiters then
          tickets[tid] = nil
          io.stderr:write(string.format("ticket: '%s': too many waiters (limit %d)\n", cat, LIMITS.waiters))
          return false
        end
        c.queue[#c.queue + 1] = tid
        return tid
      end
      local function feedback(fb, result)
        if fb and fb ~= "" then stage.signal(from.stage .. ":" .. fb, id, result) end
      end
      if reply then -- CASE.2 "CATEGORY=CALLBACK[?FEEDBACK]": value
        local cb, fb = reply:match("^([^?]*)%??(.*)$")
        local c = cats[id]
        if cb == "" then error("ticket: '" .. id .. "': empty callback id", 0) end
        feedback(fb, c and ask(c, id, cb, arg) or false)
        return
      end
      local cat, fb = id:match("^([^?]*)%??(.*)$") -- CASE.1 "CATEGORY[?FEEDBACK]": {cb = value}
      if type(arg) ~= "table" then
        error("ticket: '" .. id .. "': expected {CALLBACK = value, ...} or CATEGORY=CALLBACK", 0)
      end
      local c, out = cats[cat], {}
      for cb, value in pairs(arg) do
        if type(cb) ~= "string" or cb == "" then error("ticket: '" .. id .. "': a callback id must be a non-empty string", 0) end
        out[cb] = c and ask(c, cat, cb, value) or false
      end
      feedback(fb, out)
      return
    end)
    if not ok then
      io.stderr:write(tostring(r), "\n")
      return nil, r
    end
    return r
  end)
end

-- stage.proxy(t, tags): an object whose methods are t's functions called with t first
-- (v:name(...) runs t.name(t, ...)); other fields read and write t. tags[1] names it.
-- This is the part of STAGE's stage.proxy the actor helper needs (docs/stages.md).
if not stage.proxy then
  function stage.proxy(t, tags)
    if type(t) ~= "table" then error("stage.proxy: expected a table, got " .. type(t), 2) end
    local name = type(tags) == "table" and tags[1] or "proxy"
    return setmetatable({}, {
      __index = function(_, k)
        local v = t[k]
        if type(v) == "function" then return function(_, ...) return v(t, ...) end end
        return v
      end,
      __newindex = t,
      __tostring = function() return "proxy: " .. tostring(name) end,
    })
  end
end

-- stage.actor(ask_id, callback, timeout_ms): ask with a timeout, as STAGE's
-- bin/preload/actor.lua: v:ask_id(arg, ...) signals ask_id asking for a reply; the reply
-- calls callback(arg..., reply...) once; after timeout_ms (default 100; <= 0: none)
-- without a reply, callback(arg...) alone. Returns what stage.signal returns.
function stage.actor(ask_id, callback, timeout)
  local proxy = {ask_id, callback, timeout or 100}
  proxy[ask_id] = function(p, arg, ...)
    local id = stage.waitfor(function(f, a, ...)
      stage.waitfor(_WAITFOR[-1], nil)
      stage.call(f, a, ...)
    end, p[2], arg)
    if p[3] > 0 then
      stage.addtask(p[3], function(wid)
        local f, extra = stage.waitfor(wid)
        if f ~= nil then
          stage.waitfor(wid, nil)
          stage.call(extra[1], extra[2]) -- timed out: the callback with its arg alone
        end
      end, id)
    end
    return stage.signal(p[1] .. "=" .. id, ...)
  end
  return stage.proxy(proxy, {"actor"})
end
]==]
-- stage.builtin and stage.actor are stubs in C (node/lua/lua_builtin.c) that compile the
-- definitions above at their first use; this line arms them with this file and its globals.
stage.builtin[stage] = _ENV
