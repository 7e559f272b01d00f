-- STAGE's built-in stages, written on the public API (docs/stages.md). Each is the body of
-- an actor: stage.builtin[name] is spawned as stage `name` on the node that first signals
-- it (node/lua/lua_builtin.c), or by a script: stage.spawn("index", stage.builtin.index).
-- Requests arrive at the "@" handler; _WAITFOR[0] is the message id (the command).
stage.builtin = stage.builtin or {}

-- index: ranking boards. "CMD?BOARD[/TIER]" with one argument, the answer is the reply
-- (`=rid`); any id without '?' carries a batch {["#SEQ.CMD:BOARD/TIER"] = arg, ...}, answered
-- as one table with the same keys. CMD: get, set, del, forEach, range, total (or their
-- first letter). TIER is 1..4 (default 1); "BOARD/" means every tier.
function stage.builtin.index()
  local LIMITS = {boards = 1024, keys = 10000000, key_bytes = 1024, batch = 10000}
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

  local short = {g = "get", s = "set", d = "del", f = "forEach", r = "range", t = "total"}

  -- "#SEQ.CMD?BOARD/TIER" or "CMD:BOARD/TIER" -> the command's result
  local function run(id, arg)
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
    return f("index: " .. id, name, tier, arg)
  end

  stage.waitfor("@", function(arg)
    local id = _WAITFOR[0]
    local ok, result = pcall(function()
      if id:find("?", 1, true) then return run(id, arg) end
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
    end)
    if not ok then
      io.stderr:write(tostring(result), "\n")
      return nil, result
    end
    return result
  end)
end
