-- Ordered locks: grants in request order; a release grants the next (1 extends its hold to
-- 5 s, then releases: 2 gets it long before); an unreleased grant expires after 100 ms (2);
-- >> extends a hold (3 extends by 300 ms and does not release: 4 waits for that); only the
-- holder releases. Every time check is a bound the load cannot break the wrong way.
-- The requests are made in a known order whatever the load: main tells locker n+1 to ask
-- only after locker n said it asked (20 ms later), and only once all four are up.
local order, granted_at, ready = {}, {}, 0
stage.waitfor("done", function (who, at)
  order[#order + 1] = who
  granted_at[who] = at
  if #order == 4 then
    print("grant order", table.concat(order, ","))
    print("1 released: 2 got it before 1's extended hold ended", granted_at[2] - granted_at[1] < 2)
    print("2 expired before 3 got it", granted_at[3] - granted_at[2] >= 0.09)
    print("3 extended: 4 waited past its 100 ms lease", granted_at[4] - granted_at[3] >= 0.29)
  end
end)
local function go(n) stage.addtask(20, function () stage.signal("*locker:go", n) end) end
stage.waitfor("ready", function () ready = ready + 1; if ready == 4 then go(1) end end)
stage.waitfor("asked", function (who) if who < 4 then go(who + 1) end end)
for i = 1, 4 do
  stage.spawn("locker", function (me)
    stage.waitfor("granted", function (tag)
      stage.signal("main:done", me, process.tick)
      if me == 2 then return end                -- never releases: the lease expires
      if me == 3 then                           -- extends, never releases
        stage.signal(">>L.granted", 300)
        return
      end
      if me == 1 then stage.signal(">>L.granted", 5000) end
      stage.signal("<L.*")
    end)
    stage.waitfor("go", function (n)
      if n ~= me then return end
      stage.signal(">L.granted", "t" .. me)
      stage.signal("main:asked", me)
    end)
    stage.signal("main:ready")
  end, i)
end
print("not the holder:", stage.signal("<L.*"))
