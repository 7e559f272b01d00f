-- stage.index (STAGE docs/tech/sandbox.md, r890; stage/lua.cpp's luaL_toindex): a key other
-- than a string or a number, used on the table of a policy name, becomes the key the hook
-- returns. The documented example first, with addresses printed as types.
_SANDBOX[""] = { "MAP" }

stage.index = function (r, i, t)
  print("CALL", i, type(t), type(r))
  for k, v in pairs(t) do print("--", k, v) end
  for k, v in pairs(r) do print("  ", k, v) end
  return "HELLO"
end

MAP = {}
print("====")
MAP[{10, 20}] = 100
print("====")
for k, v in pairs(MAP) do print(">>", k, v) end
print("MAP = ", MAP[{10, 20}])

-- A hook made of parts, as scripts write it; nil means "no access": nothing stored or read.
stage.index = function (k)
  if k[1] == 0 then return nil end
  return k[1] .. "." .. k[2]
end
MAP = {} -- a new table for the same name is converted too
MAP[{1, 2}] = "one.two"
MAP[{0, 5}] = "never"
print("stored", MAP["1.2"], MAP[{1, 2}], MAP[{0, 5}])
local n = 0
for k in pairs(MAP) do n = n + 1; assert(k == "1.2") end
print("keys", n)

-- stage.index may be a table of hooks by place: "thread" for plain policy names.
stage.index = { thread = function (k) return k.id end }
MAP[{ id = 7 }] = "seven"
print("by place", MAP[7], rawget(MAP, 7))

-- A hook result other than a string or a number is used as tostring gives it.
stage.index = function () return true end
MAP[{}] = "yes"
print("tostring result", MAP["true"])

-- Without a hook the key is tostring(k), as STAGE stores it.
stage.index = nil
local key = {}
MAP[key] = "raw"
print("no hook", MAP[tostring(key)] == "raw", rawget(MAP, key))

-- Strings and numbers are keys as they are; the hook is not called for them.
stage.index = function () error("must not be called") end
MAP.name, MAP[3] = "n", "three"
print("plain keys", MAP.name, MAP[3], MAP.absent)

-- Tables that no policy name holds keep standard Lua's table keys.
local plain = {}
PRIVATE = plain
PRIVATE[key] = "kept"
print("private", plain[key], getmetatable(plain))

-- In a coroutine, the policy name is the creator's, converted the same way.
stage.index = function (k, where) return where .. ":" .. k[1] end
coroutine.wrap(function () MAP[{"co"}] = "from coroutine" end)()
print("coroutine", MAP["thread:co"])

-- A starred name's table calls the hook with "sandbox", and still travels as plain data.
_SANDBOX[""] = { "*SHARED" }
SHARED = {}
local t = SHARED
t[{"x"}] = 1
print("starred", t["sandbox:x"])
stage.waitfor("got", function (v)
  print("received", type(v), getmetatable(v), v["sandbox:x"])
end)
stage.signal("got", t)
