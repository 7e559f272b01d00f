-- Bad requests to the curl stage raise at the call, naming the field; the node goes on
-- and the next good request is served. No server is needed: port 1 refuses, file:// is
-- refused by the stage itself, and the standalone node waits for both answers.
local function try(v)
  local ok, err = pcall(stage.signal, "curl:r", v)
  print(ok, err)
end
try(42)
try({url = 1})
try({url = "http://127.0.0.1:1/", header = "x"})
try({url = "http://127.0.0.1:1/", header = {X = {}}})
try({url = "http://127.0.0.1:1/", data = true})
try({url = "http://127.0.0.1:1/", data = {a = {}}})
try({url = "http://127.0.0.1:1/", ca = 1})
try({url = "http://127.0.0.1:1/", timeout = -1})
try({url = "http://127.0.0.1:1/", max_body = 1.5})
try({url = "http://127.0.0.1:1/", extra = {sock = io.stdout}})
try(setmetatable({}, {__index = function () error("never called") end}))

local answers = 0
stage.waitfor("r", function (r)
  print(r.url, r.status, r.data.result, r.data.content, r.extra)
  answers = answers + 1
  if answers == 1 then
    print(stage.signal("curl:r", "file:///etc/hostname")) -- in turn, so the output is stable
  else
    print("both answered")
  end
end)
print(stage.signal("curl:r", {url = "http://127.0.0.1:1/", extra = "x"}))
print(stage.signal("curl:-", "http://127.0.0.1:1/nobody-waits"))
