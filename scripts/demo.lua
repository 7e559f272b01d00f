-- The sandbox demo of the README tour: private globals, and the sharing policy that opens them up.
print("stage-node demo on node " .. process.name .. ", thread " .. thread.id)

SCORE = 0
local player = coroutine.wrap(function (name)
  for round = 1, 3 do
    SCORE = SCORE + 10          -- private: main's SCORE does not move
    print(name .. " round " .. round .. ": my SCORE is " .. SCORE)
    coroutine.yield()
  end
end)
for _ = 1, 3 do player("alice") end
print("main's SCORE is still " .. SCORE)

_ENV[""] = { "TOTAL" }           -- TOTAL is shared with coroutines, live
TOTAL = 0
local team = coroutine.wrap(function ()
  for _ = 1, 3 do TOTAL = TOTAL + 5; coroutine.yield() end
end)
for _ = 1, 3 do team() end
print("shared TOTAL is " .. TOTAL .. " (policy: " .. table.concat(_ENV[""], ", ") .. ")")
