local a = app.ready({1, 'two', 3.5})
local b = app.later(1, 'later')
local ok1, e1 = pcall(app.fail, 'boom')
local ok2, e2 = pcall(app.cancel)
local ok3, e3 = pcall(app.throws)
local co = coroutine.wrap(function() coroutine.yield(app.later(0, 1)) return app.ready(2) end)
local ok4, e4 = pcall(table.sort, {3, 1, 2}, function(x, y) app.pending() return x < y end)
return {a, b, ok1, e1, ok2, e2, ok3, e3, co(), co(), ok4, e4, isle.canceled()}
