return {f = function() end}
