return ('\u{10FFFF}'):rep(3) .. '\0' .. string.format('%q', 1/0)
