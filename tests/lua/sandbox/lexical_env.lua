-- A function defined outside the coroutine keeps its own environment when called inside;
-- the coroutine body itself, called directly, still sees the main environment.
N = "main"
function show() return N end
local function body()
  N = "co"
  return N, show()
end
local co = coroutine.wrap(body)
print(co())
print(body())
print(N)
