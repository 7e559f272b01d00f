"""Functions travel between nodes: closures with their upvalues, and the function cache."""
from harness import check, start_cluster, timeout

FX_LUA = r'''
-- runs functions sent from other nodes
stage.waitfor("shared", function (inc, get)
  inc(); inc(); inc()
  return get(), process.name
end)
stage.waitfor("call", function (f, x) return f(x), process.name end)
'''

DRIVER_LUA = r'''
CACHED_SENDS = 5
when_ready("fx", {"B"}, function ()
  print("READY")
  -- two closures sharing one upvalue cell, plus a plain upvalue
  local counter = 0
  local step = 1
  local function inc() counter = counter + step; return counter end
  local function get() return counter end
  stage.waitfor("shared_r", function (v, where)
    print("SHARED " .. show(v, where, counter))
    -- the same function sent CACHED_SENDS + 1 times, one after the other
    local base = 40
    local function addbase(x) return base + x end
    local sent = 0
    stage.waitfor("call_r", function (v, where, err)
      print("CALL " .. show(v, where, err))
      sent = sent + 1
      if sent <= CACHED_SENDS then stage.signal("fx:call=call_r", addbase, sent)
      else print("CALLS DONE") end
    end)
    stage.signal("fx:call=call_r", addbase, 0)
  end)
  stage.signal("fx:shared=shared_r", inc, get)
end)
'''


@timeout(60)
def test_closure_upvalues_and_function_cache(ctx):
    fx = ctx.script("fx.lua", FX_LUA)
    drv = ctx.script("driver.lua", DRIVER_LUA)
    # code travels only between authenticated nodes: each with its own key (issue 12)
    a, b = start_cluster(ctx, [("A", dict(script=drv)), ("B", dict(actors=[("fx", fx, 1)]))],
                         curve=True)
    a.wait_line(r"^READY$", 20)
    shared = a.wait_line(r"^SHARED ", 15)[0]
    # inc x3 on B increments the one shared cell seen by get; A's own counter stays 0
    check(shared == "SHARED 3 B 0",
          "closures sharing an upvalue run on B with shared cells (got %r)" % shared)
    a.wait_line(r"^CALLS DONE$", 20)
    calls = [l for l in a.lines() if l.startswith("CALL ")]
    check(calls == ["CALL %d B nil" % (40 + i) for i in range(6)],
          "a closure with an upvalue runs on B each time: %r" % calls)
    hits = b.metric("stage_function_cache_total", result="hit")
    check(hits is not None, "B exports stage_function_cache_total{result=\"hit\"}")
    # the first send of addbase (and of inc/get) carries the bytecode; the 5 later
    # sends of addbase carry its hash only, each one a hit in B's cache
    check(hits == 5, "B's function cache hits grew by the 5 cached sends (got %r)" % hits)
    misses = b.metric("stage_function_cache_total", result="miss") or 0
    counters = b.status()["nodes"]["B"]["counters"]
    check(counters.get("function_cache_hits") == 5,
          "status.json function_cache_hits of B is 5: %r (misses %r)"
          % (counters.get("function_cache_hits"), misses))
