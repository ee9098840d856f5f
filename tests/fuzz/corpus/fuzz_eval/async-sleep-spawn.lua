local t = isle.spawn(function(a, b) isle.sleep(1) return a + b, a * b end, 6, 7)
local u = isle.spawn(function() isle.sleep(1e9) end)
isle.sleep(0)
u:cancel()
local ok, e = pcall(u.join, u)
return {t:join(), t:done(), u:done(), ok, e}
