-- A stage.json whose Lua stage names a script in no %package folder: exit 2.
print("never")
