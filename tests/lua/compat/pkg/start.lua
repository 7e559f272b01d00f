-- the main script of stage "stage" in stage_json.json: answers "ping" with its settings
stage.waitfor("ping", function ()
  local c = process["$"]
  return c["%preload"], process["$%package"][1], process["$lua.so+stage"]
end)
