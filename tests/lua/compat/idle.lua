-- A main script that returns a function has it run as its IDLE function (STAGE's docs/
-- README.md: "return function () return 1000 end -- IDLE; 0 or nothing stops it"): at once,
-- then again after the ms it returns.
local n = 0
print("top level done")
return function ()
  n = n + 1
  print("idle", n)
  if n < 3 then return 10 end
end
