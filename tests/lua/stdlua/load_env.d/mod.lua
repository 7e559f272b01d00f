MODVAR = "set by module"
return { where = WHERE }
