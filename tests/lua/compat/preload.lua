-- %preload folders are read recursively (STAGE's luaL_loadall), here in name order.
print(ORDER)
