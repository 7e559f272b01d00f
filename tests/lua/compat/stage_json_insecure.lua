-- A stage.json's "#cluster" port (STAGE's default is 9801; this test uses 29801, below the
-- ephemeral range, where a developer's STAGE is not) is opened, on loopback, when the command
-- line says --insecure (or gives --curve-secret): the node listens, so it stays up until
-- this script stops it, once the file's stage "stage" has answered.
stage.waitfor("pong", function (pre, pkg, script)
  print("pong", pkg, script)
  stage.exit()
end)
print("sent", stage.signal("stage:ping=pong"))
