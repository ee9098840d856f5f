local ts = {}
for i = 1, 3 do ts[i] = isle.spawn(function() local s = 0 for j = 1, 2e5 do s = s + j end isle.progress(i, 3) return s end) end
local sum = 0
for i = 1, 3 do sum = sum + ts[i]:join() end
local t
t = isle.spawn(function() return pcall(t.join, t) end)
return sum, t:join()
