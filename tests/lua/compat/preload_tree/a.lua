ORDER = (ORDER or "") .. "a "
