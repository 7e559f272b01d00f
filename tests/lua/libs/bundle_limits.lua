-- The bundle's limits are --set keys (here viewof_max=4096, viewof_fields=4, bundle_depth=3);
-- each is logged as a warning when reached, and the script gets an error naming it.
print(bundle.json({a = {b = {c = 1}}}))
print(bundle.json({a = {b = {c = {d = 1}}}}))
print(bundle.json('{"a": {"b": {"c": {"d": 1}}}}'))
print(bundle.bson({a = {b = {c = {d = 1}}}}))
print(bundle.bson(bundle.bson({a = {b = {c = 1}}})).a.b.c)
local function doc(body) return string.pack("<i4", #body + 5) .. body .. "\0" end
local function sub(key, d) return "\3" .. key .. "\0" .. d end
print(bundle.bson(doc(sub("a", doc(sub("b", doc(sub("c", doc("")))))))))
local path = os.tmpname()
print(bundle.viewof({path, {"i"}}, 1024).rows)
print(pcall(bundle.viewof, {path, {"i"}}, 1025))
print(pcall(bundle.viewof, {path, {"i i i i i"}}, 1))
print(pcall(bundle.viewof, {path, 5}, 1))
os.remove(path)
