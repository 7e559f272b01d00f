print("before")
local function f() return nosuch.field end
f()
print("never")
