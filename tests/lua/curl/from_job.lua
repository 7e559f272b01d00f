-- A request sent from a job is answered to the actor that submitted the job.
stage.waitfor("got", function (r) print("the actor got", r.url, r.data.result) end)
stage.submit(0, function ()
  assert(stage.signal("curl:got", "http://127.0.0.1:1/from-job") == 1)
end)
