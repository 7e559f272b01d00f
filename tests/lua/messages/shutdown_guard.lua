-- issue 12: a finalizer runs with hooks off, so the budget cannot stop one that loops; at
-- exit it held the node forever. Shutdown is bounded: past --set shutdown the node logs and
-- exits with the status it would have had.
keep = setmetatable({}, {__gc = function () while true do end end})
print("main ran")
