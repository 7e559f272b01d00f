-- A --listen given on the command line keeps the refusal without CurveZMQ keys (exit 2),
-- a stage.json beside it or not: only the port that came from the file runs alone.
print("never")
