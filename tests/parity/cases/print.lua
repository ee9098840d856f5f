-- print (replaced by QIsle: it goes to the QIsle::printed signal, one
-- signal a line), as lua5.4 prints to standard output.
local H = dofile("../harness.lua")
local case = H.case

print()
print(nil)
print(nil, nil)
print(true, false)
print(1, -1, 0, math.maxinteger, math.mininteger)
print(1.0, -0.0, 0.1, 1e100, -1e-100, 2^53, 2^63, math.pi)
print(1/0, -1/0)
print(0/0 ~= 0/0)
print("a", "", "b")
print("tab\tinside", "newline\ninside")
print("embedded\0nul", "\0", "x\0")
print("\1\2\3\127")
print(("long "):rep(1000):len(), ("x"):rep(5000))
print(setmetatable({}, {__tostring = function() return "custom" end}))
print(setmetatable({}, {__tostring = function() return "" end}), "after")
print(setmetatable({}, {__tostring = function(t) return "a\0b" end}))
print(setmetatable({}, {__name = "MyType", __tostring = function() return "tostring wins" end}))
print(setmetatable({}, {__index = function() return "not used" end}) ~= nil)
print(1, nil, 3, nil)
print(select("#", print()))
print(string.format("%5.2f|%-5d|%q", 3.14159, 42, "q\n"))
print(string.format("%s %s", 1, 1.0), 10 // 3, 10 / 2, 3 % -2, -3 // 2, 7.0 // 2)
print(math.tointeger(3.0), math.type(1), math.type(1.0), math.type("1"))
print(tostring(nil), tostring(true), tostring(12), tostring("s"))
print(#"\0\0\0", ("\0"):byte(), ("a\0b"):len())
-- print does not use the global tostring (Lua 5.4).
local savedTostring = tostring
tostring = function() return "replaced" end
print("not replaced", 5)
tostring = savedTostring
-- Errors while converting: Lua's messages.
case("__tostring returns a number", print, setmetatable({}, {__tostring = function() return 42 end}))
case("__tostring returns nil", print, setmetatable({}, {__tostring = function() end}))
case("__tostring returns a table", print, setmetatable({}, {__tostring = function() return {} end}))
case("__tostring errors with a table", print, setmetatable({}, {__tostring = function() error({tag = "ts"}) end}))
case("__name not a string", tostring, setmetatable({}, {__name = 42}) and "skip" or nil)
-- print from inside coroutines, pcall and metamethods.
coroutine.wrap(function() print("from a coroutine") end)()
pcall(print, "from pcall")
xpcall(error, function(m) print("from a handler", m) end, "message")
setmetatable({}, {__index = function(_, k) print("from __index", k) end}).key = nil
local _ = setmetatable({}, {__index = function(_, k) print("from __index", k) end}).key
table.sort({3, 1, 2}, function(a, b) print("compare", a, b) return a < b end)
print(("abc"):gsub("%w", function(c) print("gsub sees", c) end))
print("done")
