-- A stage.json with no Lua stage in #startup cannot start a node: exit 2, naming it.
print("never")
