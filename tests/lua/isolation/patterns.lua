-- The budgeted matcher gives Lua 5.3's results and errors (this file's .out is what plain
-- lua5.3 prints for it).
local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  return table.concat(t, " ", 1, t.n)
end
local function try(f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then return "error: " .. tostring(r[2]) end
  return show(table.unpack(r, 2, r.n))
end
local subjects = {"hello world", "", "  key = value  ", "a,b,,c", "THE (quick) fox",
                  "[[x]] and [y]", "f(a(b)c)d", "x=1, y=22, z=333", "aaa", "\0a\0b", "été"}
local patterns = {"o", "^h", "d$", "%w+", "(%w+)=(%w+)", "()o()", "%s*(.-)%s*$", "[^,]*",
                  "%b()", "%f[%w]%w+", "(a)(%1)", "[%a_][%w_]*", "x?y", ".-b", "a-", "a*",
                  "a+", "[a-c]+", "[]]", "[^%s]+", "%d+", "%u+", "^$", "", "(()", "%",
                  "[a", "%b", "%f", "(%1)", "%0", "%g+", "%p", "%c", "%x+", "%z", ".",
                  "[%]]", "%.", "^(.)(.)", "(h)(e)(l)(l)(o)", "[\0]", "é"}
for _, s in ipairs(subjects) do
  for _, p in ipairs(patterns) do
    print(("%q %q"):format(s, p), "find", try(string.find, s, p),
          "init3", try(string.find, s, p, 3), "neg", try(string.find, s, p, -2),
          "match", try(string.match, s, p))
    local got = {}
    local ok, err = pcall(function ()
      local n = 0
      for a, b in s:gmatch(p) do
        n = n + 1
        got[#got + 1] = show(a, b)
        if n > 50 then break end
      end
    end)
    print("", "gmatch", ok and table.concat(got, "|") or "error: " .. err)
    print("", "gsub", try(string.gsub, s, p, "<%0>"), try(string.gsub, s, p, "%%1", 2),
          try(string.gsub, s, p, {o = "0", hello = false}),
          try(string.gsub, s, p, function (x) return x == "a" and "A" or nil end))
  end
end
print(try(string.gsub, "abc", "b", "%2"), try(string.gsub, "abc", "b", "%x"),
      try(string.gsub, "abc", "b", true), try(string.gsub, "abc", "b", {b = {}}),
      try(string.gsub, "abc", "(b)", "%1%1"), try(string.gsub, "abc", "", "-"))
print(try(string.find, "a.b", ".", 1, true), try(string.find, "abc", "b", 10),
      try(string.find, "abc", "", 4), try(string.find, "abc", "", 5), try(string.match, "abc", "()", 4))
print(try(string.find, ("x"):rep(300), ("(x)"):rep(33)), try(string.match, ("("):rep(250) .. "a" .. (")"):rep(250), "%b()"))
print(try(string.rep("a", 500).match, string.rep("a", 500), string.rep("a?", 250) .. string.rep("a", 10)))
