-- A stage.json's C stages: a built-in one (ticket) and curl are said to be unneeded; any
-- other C stage (geo) is named as not supported, each in one start-up warning.
print("started")
