ORDER = (ORDER or "") .. "b_sub/x "
