ORDER = (ORDER or "") .. " a"
