ORDER = (ORDER or "") .. " b"
