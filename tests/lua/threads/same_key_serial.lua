-- Jobs with one non-zero key never overlap and run in submission order; another key is
-- not held up behind them.
_ENV[""] = { "*INFLIGHT", "*MAXSEEN", "*RUNS", "*ORDER" }
INFLIGHT, MAXSEEN, RUNS, ORDER = 0, 0, 0, ""
for j = 1, 20 do
  stage.submit(7, function (n)
    __.INFLIGHT = function (v)
      v = v + 1
      __.MAXSEEN = function (m) if v > m then return v end end
      return v
    end
    local t = os.clock() + 0.002
    while os.clock() < t do end
    __.ORDER = function (o) return o .. n .. "," end
    __.INFLIGHT = function (v) return v - 1 end
    __.RUNS = function (r) return r + 1 end
  end, j)
end
stage.submit(8, function () __.ORDER = function (o) return o .. "k8," end end)
stage.submit(0, function ()
  if RUNS < 20 then return 5 end
  print("most in flight for key 7", MAXSEEN)
  local seven = ORDER:gsub("k8,", "")
  local want = {}
  for i = 1, 20 do want[i] = i .. "," end
  print("key 7 in order", seven == table.concat(want))
  print("key 8 not held up", ORDER:find("k8,", 1, true) < #ORDER - 3)
end)
