ORDER = (ORDER or "") .. "b_sub/deeper/y "
