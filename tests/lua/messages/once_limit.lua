-- stage.once's node-wide key table is bounded by --set once_keys (3 here): a new key past
-- the limit raises an error naming the limit and how to raise it, instead of answering
-- false as if the key had been seen; known keys still answer false; forgetting makes room.
for i = 1, 3 do
  print("key" .. i, stage.once("k" .. i, function () return i end))
end
print("known", stage.once("k2", function () return "again" end))
local ok, err = pcall(stage.once, "k4", function () return "ran" end)
print("k4", ok, err:match("once_keys") ~= nil, err:match("%-%-set once_keys=N") ~= nil)
print(pcall(stage.once, "k5", function () return "ran" end) == false)
stage.once("k1", nil)
print("after forget", stage.once("k4", function () return "ran" end))
