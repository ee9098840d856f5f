local ok, e = pcall(error, setmetatable({}, {__tostring = function() return 'x' end})) return tostring(e)
