-- A job sees the standard library as it was, whatever earlier jobs (of any actor) did to
-- it: replaced functions, the string metatable, added or removed library fields.
stage.spawn("x", function ()
  stage.submit(1, function ()
    string.rep = function () return "X's rep" end
    getmetatable("").__index = {upper = function () return "X's upper" end}
    table.insert = nil
    math.evil = true
    stage.signal = function () return "X's signal" end
    setmetatable(string, {__index = function () return "X's field" end})
    print("x changed the library")
  end)
end)
stage.addtask(300, function ()
  stage.spawn("y", function ()
    stage.submit(2, function ()
      print(("a"):rep(3), ("a"):upper(), string.nothing, type(table.insert), math.evil,
            stage.signal == nil, getmetatable("").__index == string)
    end)
  end)
end)
