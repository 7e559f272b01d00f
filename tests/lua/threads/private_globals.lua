-- A job's plain globals are its own: the submitter's are invisible, its writes do not reach
-- the submitter, and nothing leaks into the next job on the same worker.
X = "mine"
local first = thread.new(function () local before = X; X = "theirs"; LEFT = 1; return before, X end)
first.waitfor(function (before, after)
  print("job saw", before, after, "main has", X)
  for i = 1, 4 do
    local next = thread.new(function () return X, LEFT end)
    next.waitfor(function (x, left) print("next job sees", x, left) end)
  end
end)
