-- Script tests: runs each NAME.lua through the real stage-node binary.
--   lua5.3 tests/lua/run.lua BINARY DIR...
-- NAME.out     stdout must match exactly, where <tid> stands for one integer
-- NAME.err     each line must appear somewhere in stderr
-- NAME.status  the expected exit status (default 0)
-- NAME.flags   extra command-line options, placed before the script
-- NAME.env     shell assignments placed before the command (e.g. TSAN_OPTIONS)
-- There is no skip and no expected failure: a test that cannot pass here fails.
local binary = assert(arg[1], "usage: run.lua BINARY DIR...")
local TIMEOUT = os.getenv("SN_TEST_TIMEOUT") or "60"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function lines(s)
  local t = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do t[#t + 1] = l end
  if t[#t] == "" then t[#t] = nil end
  return t
end

local function pattern_of(line)
  local p = line:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  p = p:gsub("<tid>", "%%-?%%d+")
  return "^" .. p .. "$"
end

local function check_out(expected, actual)
  local e, a = lines(expected), lines(actual)
  for i = 1, math.max(#e, #a) do
    if not e[i] or not a[i] or not a[i]:match(pattern_of(e[i])) then
      return string.format("stdout line %d: expected %q, got %q", i, e[i] or "<end>", a[i] or "<end>")
    end
  end
end

local function check_err(expected, actual)
  for _, l in ipairs(lines(expected)) do
    if l ~= "" and not actual:find(l, 1, true) then
      return string.format("stderr lacks %q", l)
    end
  end
end

local tmp = os.tmpname()
local passed, failed = 0, 0
local failures = {}

for d = 2, #arg do
  local dir = arg[d]
  local names = {}
  local p = io.popen('ls "' .. dir .. '"')
  for f in p:lines() do
    local n = f:match("^(.+)%.lua$")
    if n then names[#names + 1] = n end
  end
  p:close()
  table.sort(names)
  for _, n in ipairs(names) do
    local base = dir .. "/" .. n
    local flags = (read(base .. ".flags") or ""):gsub("\n", " ")
    -- NAME.env: shell assignments put before the command (a test that means to leave a
    -- thread running at exit tells TSan so)
    local env = (read(base .. ".env") or ""):gsub("\n", " ")
    local cmd = string.format('%s timeout %s "%s" %s "%s.lua" >"%s.o" 2>"%s.e"',
                              env, TIMEOUT, binary, flags, base, tmp, tmp)
    local _, _, status = os.execute(cmd)
    local out, err = read(tmp .. ".o") or "", read(tmp .. ".e") or ""
    local want = tonumber(read(base .. ".status") or "0")
    local why
    if status ~= want then
      why = string.format("exit status %s, expected %d", tostring(status), want)
    end
    why = why or (read(base .. ".out") and check_out(read(base .. ".out"), out))
    why = why or (read(base .. ".err") and check_err(read(base .. ".err"), err))
    local label = dir:match("[^/]+$") .. "/" .. n
    if why then
      failed = failed + 1
      failures[#failures + 1] = label
      print("FAIL  " .. label .. ": " .. why)
      io.write("      stderr: ", (err:sub(1, 2000):gsub("\n", "\n              ")), "\n")
    else
      passed = passed + 1
      print("PASS  " .. label)
    end
  end
end
os.remove(tmp); os.remove(tmp .. ".o"); os.remove(tmp .. ".e")
print(string.format("scripts: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
