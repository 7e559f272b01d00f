-- --listen on an address no interface has: start-up stops with status 2 and names the
-- address, as a bad --http does (issue 12).
print("never runs")
