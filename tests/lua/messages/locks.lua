-- Ordered locks: grants in request order; a release grants the next; an unreleased grant
-- expires after 100 ms; >> extends a hold; only the holder releases.
local order, granted_at = {}, {}
stage.waitfor("done", function (who, at)
  order[#order + 1] = who
  granted_at[who] = at
  if #order == 4 then
    print("grant order", table.concat(order, ","))
    print("2 expired before 3 got it", granted_at[3] - granted_at[2] >= 0.09)
    print("3 extended: 4 waited for its release, not its lease", granted_at[4] - granted_at[3] < 0.09)
  end
end)
for i = 1, 4 do
  stage.spawn("locker", function (me)
    stage.waitfor("granted", function (tag)
      stage.signal("main:done", me, process.tick)
      if me == 2 then return end                -- never releases: the lease expires
      if me == 3 then stage.signal(">>L.granted", 300) end
      stage.signal("<L.*")
    end)
    stage.waitfor("go", function () stage.signal(">L.granted", "t" .. me) end)
  end, i)
end
for i = 1, 4 do  -- lockers ask one after another, 20 ms apart, in spawn order
  stage.addtask(20 * i, function () stage.signal("locker:go") end)
end
print("not the holder:", stage.signal("<L.*"))
