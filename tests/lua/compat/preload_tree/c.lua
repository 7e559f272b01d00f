ORDER = (ORDER or "") .. "c "
