-- ticket: a category of 2 tickets; three requests: two granted, one queued; releasing one
-- grants the queued one; a refusing category (negative limit) answers false; the grant
-- handler's return extends (ms) or releases (0).
local held = {}
stage.waitfor("fb", function(id, r)
  if type(r) == "table" then
    local ks = {}
    for k, v in pairs(r) do ks[#ks + 1] = k .. "=" .. tostring(v):gsub("@%x+", "@ID") end
    table.sort(ks)
    print("FEEDBACK", id, table.concat(ks, ","))
  else
    print("FEEDBACK", id, (tostring(r):gsub("@%x+", "@ID")))
  end
end)
local granted = 0
stage.waitfor("work", function(v, tid)
  granted = granted + 1
  print("GRANT", v, type(tid))
  held[#held + 1] = tid
  if granted == 2 then
    stage.signal("ticket:" .. held[1], 0) -- release the first: the queued one gets it
  end
  return 200 -- keep it 200 ms more
end)
stage.signal("ticket:@login", {2})
stage.signal("ticket:@room", {-1})
stage.signal("ticket:login?fb", {work = "a"})
stage.signal("ticket:login=work?fb", "b")
stage.signal("ticket:login=work?fb", "c")
stage.signal("ticket:room=work?fb", "r1")
stage.signal("ticket:room=work?fb", "r2")
stage.signal("ticket:nosuch=work?fb", "x")
stage.addtask(300, function() print("granted", granted) end)
