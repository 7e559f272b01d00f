-- A stage.json that is not valid JSON: exit 2, naming the line.
print("never")
