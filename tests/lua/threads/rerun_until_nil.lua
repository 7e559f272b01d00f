-- A positive return re-runs the job after that many ms with the same arguments; nil stops it.
_ENV[""] = { "*N" }
N = 0
stage.submit(0, function (limit, tag)
  __.N = function (n) return n + 1 end
  if N < limit then return 1 end
  print("stopped at", N, tag)
end, 5, "same-args")
