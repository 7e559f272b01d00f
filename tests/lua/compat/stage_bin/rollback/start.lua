print("ROLLBACK")
