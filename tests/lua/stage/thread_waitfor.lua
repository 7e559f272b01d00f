-- to.waitfor(fn, extra...) as STAGE documents it (thread_object.waitfor(function (v...,
-- data...) [, v...])): the extra values come first, then the thread's; the colon form
-- to:waitfor(...) works too; to.waitfor(extra...) replaces the extra values. Before issue
-- 13 the two-argument form crashed the node (SIGSEGV).
local lines = {}
local function note(...)
  lines[#lines + 1] = table.concat({...}, " ")
  if #lines == 4 then -- the threads run in parallel: print in a stable order
    table.sort(lines)
    for _, l in ipairs(lines) do print(l) end
  end
end
local a = thread.new(function () thread.signal("sig"); return "ret" end)
print("dot id", a.waitfor(function (x, y, v) note("dot", x, y, v) end, "X", "Y") == a.id)
local b = thread.new(function () return "colon" end)
print("colon id", b:waitfor(function (tag, v) note("colon", tag, v) end, "TAG") == b.id)
local c = thread.new(function () return "later" end)
c.waitfor(function (tag, v) note("replaced", tag, v) end, "OLD")
c.waitfor("NEW")
print("replace extras on nothing:", thread.new(function () end).waitfor("X"))
