-- 10,000 thread.new calls each signal 3 times: every message arrives, in order per thread,
-- then the return values, then the callback is removed.
local got, bad, done = {}, 0, 0
for t = 1, 10000 do
  local to = thread.new(function (id)
    for k = 1, 3 do thread.signal(id, k) end
    return id, "end"
  end, t)
  to.waitfor(function (id, k)
    if k == "end" then
      done = done + 1
      if got[id] ~= 3 then bad = bad + 1 end
      if done == 10000 then print("done", done, "bad", bad) end
    else
      if k ~= (got[id] or 0) + 1 then bad = bad + 1 end
      got[id] = k
    end
  end)
end
