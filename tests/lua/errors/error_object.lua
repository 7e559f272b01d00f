-- A non-string error object is reported through __tostring, or by its type.
error(setmetatable({}, { __tostring = function () return "custom error object" end }))
