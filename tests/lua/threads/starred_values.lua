-- Starred values: functions are shared; __ errors leave the value unchanged; __ needs a
-- starred name; a plain global that becomes starred moves into the store.
G = "before-starring"
_ENV[""] = { "*V", "*F", "*G", "*T" }
print("G", G)
V = 1
local ok, err = pcall(__, "V", function (v) error("nope") end)
print(ok, (err:gsub("^.-:%d+: ", "")))
print("V", V)
print(__("V", function (v) return v + 1 end), V)
print(pcall(__, "W", function () end))
function F(x) return "F says " .. x end
T = { a = 1 }
local t1, t2 = T, T
print("same cached copy", t1 == t2)
thread.new(function () T = { a = 2 }; return F("hi"), G end).waitfor(function (s, g)
  print(s, g, "T.a", T.a)
end)
