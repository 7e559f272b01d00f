-- Malformed requests to the index answer nil and a message naming what is wrong; the stage
-- keeps serving.
stage.waitfor("r", function(...) local a, b = ...; if type(a) == "table" then print("R", "{K=" .. a.K .. "}") else print("R", a, b) end end)
stage.signal("index:s?b=r", {K = {i = "high"}})
stage.signal("index:s?b=r", "K")
stage.signal("index:x?b=r", 1)
stage.signal("index:g?b/9=r", "K")
stage.signal("index:f?b=r", {"one"})
stage.signal("index:s?b=r", {[""] = {i = 1}})
stage.signal("index:nonsense=r", 5)
stage.signal("index:s?b=r", {K = {i = 5}})
