-- pcall, xpcall and error (pcall and xpcall are replaced by QIsle so that a
-- stop is never swallowed), as lua5.4 runs them.
local H = dofile("../harness.lua")
local case, out = H.case, H.out

local function raise(v, level) return function() error(v, level) end end
local values = {
  {"string", "boom"}, {"table", {tag = "t"}}, {"nil", nil}, {"integer", 42},
  {"float", -0.5}, {"true", true}, {"false", false}, {"function", print},
  {"thread", coroutine.create(print)},
}

-- Error objects of every type, through pcall and xpcall.
for _, v in ipairs(values) do
  out("pcall error " .. v[1], pcall(raise(v[2])))
  out("xpcall error " .. v[1], xpcall(raise(v[2]), function(m) return m end))
  out("xpcall error " .. v[1] .. " handler sees", xpcall(raise(v[2]), function(m) return type(m) end))
end

-- Results and arguments.
out("pcall results", pcall(function(...) return ... end, 1, nil, "three", nil))
out("pcall no results", pcall(function() end))
out("pcall a C function", pcall(math.max, 3, 9, 4))
out("pcall a callable table", pcall(setmetatable({}, {__call = function(self, a) return "called", a end}), 5))
out("xpcall results", xpcall(function(...) return select("#", ...), ... end, print, "a", nil))
out("xpcall a C function", xpcall(string.rep, print, "ab", 3, "-"))

-- Argument errors of pcall and xpcall themselves.
case("pcall no argument", pcall)
out("pcall nil", pcall(nil))
out("pcall a number", pcall(1))
out("pcall a table", pcall({}))
case("xpcall no argument", xpcall)
case("xpcall no handler", xpcall, print)
case("xpcall number handler", xpcall, print, 1)
case("xpcall nil handler", xpcall, print, nil)
case("xpcall table handler", xpcall, print, {})
case("xpcall callable table handler", xpcall, print, setmetatable({}, {__call = print}))
case("xpcall string handler", xpcall, error, "print")
out("xpcall nil function", xpcall(nil, function(m) return "handled: " .. m end))

-- Message handlers: what they get and what they return.
out("handler returns nothing", xpcall(error, function() end))
out("handler returns several", xpcall(error, function(m) return 1, 2, 3 end))
out("handler returns nil", xpcall(error, function(m) return nil end))
out("handler gets one argument", xpcall(function() error("x", 0) end, function(...) return select("#", ...) end))
out("handler transforms", xpcall(function() local t = nil; return t.x end, function(m) return "handled: " .. m end))
out("handler a C function", xpcall(raise("c"), string.upper))
out("handler tostring", xpcall(raise({tag = 1}), tostring) ~= nil)
out("handler type", xpcall(raise(false), type))
out("handler error", xpcall(error, function() error("in handler") end))
out("handler error table", xpcall(error, function() error({tag = "h"}) end))
out("handler error once", xpcall(raise("first"), (function()
  local n = 0
  return function(m) n = n + 1; if n == 1 then error("again") end; return m .. " " .. n end
end)()))
out("handler runtime error", xpcall(error, function(m) return m.x.y end))
out("handler error level 2", xpcall(function() local t = nil; return t.x end, function() error("in handler", 2) end))

-- debug.traceback as the message handler (Lua's own idiom).
out("traceback handler", xpcall(raise("tb"), debug.traceback))
out("traceback handler, runtime error", xpcall(function() local t; return t.x end, debug.traceback))
out("traceback handler, table", xpcall(raise({tag = "tbt"}), debug.traceback))
out("traceback handler, nil", xpcall(raise(nil), debug.traceback))
out("traceback handler, number", xpcall(raise(12), debug.traceback))
out("traceback handler, thread", xpcall(raise(coroutine.create(print)), debug.traceback))
local function deeper(n) if n == 0 then error("deep", 0) end return (deeper(n - 1)) end
out("traceback handler, deep", xpcall(deeper, debug.traceback, 5))
out("traceback handler in a coroutine", coroutine.wrap(function()
  return xpcall(raise("in co"), debug.traceback)
end)())

-- Nesting.
out("nested pcall", pcall(pcall, error, "inner"))
out("nested pcall ok", pcall(pcall, pcall, print, "x"))
out("pcall in xpcall", xpcall(function() return pcall(error, {tag = "in"}) end, print))
out("xpcall in pcall", pcall(xpcall, raise("e"), function(m) return "h:" .. m end))
out("xpcall in xpcall", xpcall(function()
  return xpcall(raise("inner"), function(m) error("from inner handler") end)
end, function(m) return "outer: " .. tostring(m) end))
out("error in handler of inner, outer handles", xpcall(function()
  local ok, e = xpcall(raise("x"), function() error("y") end)
  error(e, 0)
end, function(m) return "outer got " .. m end))
out("rethrow", pcall(function()
  local ok, e = pcall(raise({tag = "again"}))
  error(e)
end))
out("deep pcall nesting", pcall(function()
  local function f(n) if n == 0 then error("bottom") end return pcall(f, n - 1) end
  return f(50)
end))
-- How deep pcall and xpcall nest before Lua's C stack limit, against a
-- plain C function that calls back through one lua_call (string.gsub): the
-- host's own nesting cancels out, what remains is what each call costs.
-- Only the kind of failure is shown: where exactly the limit falls depends
-- on the host.
local function depth(nest)
  local n, message = 0, nil
  local function f()
    n = n + 1
    local ok, e = nest(f)
    if not ok and message == nil then message = e end
    return "x"
  end
  pcall(f)
  return n, message
end
local reference = depth(function(f) return string.gsub("x", "x", f) end)
local function relative(label, nest)
  local n, message = depth(nest)
  out(label, n - reference, type(message), tostring(message):match("C stack overflow") ~= nil)
end
relative("C stack limit through pcall", function(f) return pcall(f) end)
relative("C stack limit through xpcall", function(f) return xpcall(f, function(m) return m end) end)
relative("C stack limit through xpcall, traceback handler", function(f) return xpcall(f, debug.traceback) end)
case("stack overflow", function()
  local function f() return 1 + f() end
  return f()
end)

-- error() levels and positions.
case("error level 1", function() error("m", 1) end)
case("error level 2", function() error("m", 2) end)
case("error level 2 from a Lua caller", function()
  local function inner() error("m", 2) end
  inner()
end)
case("error level 3", function()
  local function inner() error("m", 3) end
  local function middle() inner() end
  middle()
end)
case("error level 0", function() error("m", 0) end)
case("error level 50", function() error("m", 50) end)
case("error level -1", function() error("m", -1) end)
case("error level as string", function() error("m", "2") end)
case("error level not a number", function() error("m", {}) end)
case("error level float", function() error("m", 1.5) end)
case("error number gets no position", function() error(5) end)
case("error table with __tostring", function()
  error(setmetatable({tag = "ts"}, {__tostring = function() return "shown" end}))
end)
case("error without arguments", error)
case("assert false", assert, false)
case("assert nil message", assert, nil, "the message")
case("assert table message", assert, false, {tag = "am"})
case("assert no arguments", assert)
out("assert passes values", assert(1, 2, 3))

-- Runtime errors name what failed.
case("call nil global", function() undefinedFunction() end)
case("call nil field", function() local t = {} t.method() end)
case("call nil method", function() local t = {} t:method() end)
case("index nil local", function() local t; return t.x end)
case("index nil upvalue", (function() local up; return function() return up.x end end)())
case("index a number field", function() local t = {n = 1} return t.n.x end)
case("arithmetic on nil field", function() local t = {} return t.x + 1 end)
case("arithmetic on a string", function() return "abc" + 1 end)
case("concatenate a table", function() return "a" .. {} end)
case("compare number with nil", function() return 1 < nil end)
case("compare two tables", function() return {} < {} end)
case("integer divide by zero", function() return 1 // 0 end)
case("modulo by zero", function() return 1 % 0 end)
case("float to integer", function() return 1.5 | 0 end)
case("string to integer", function() return "1.5" | 0 end)
case("for initial value", function() for i = "a", 2 do end end)
case("for step zero", function() for i = 1, 2, 0 do end end)
case("length of a number", function() return #5 end)
case("unary minus of a table", function() return -{} end)
case("call a number", function() local n = 1 return n() end)
case("set field of nil", function() local t; t.x = 1 end)
case("__index loop", function()
  local t = setmetatable({}, {})
  getmetatable(t).__index = t
  return t.x
end)
case("__newindex error", function()
  local t = setmetatable({}, {__newindex = function() error("read only", 2) end})
  t.x = 1
end)
case("__call error", function()
  local t = setmetatable({}, {__call = function() error({tag = "call"}) end})
  t()
end)
case("__gc is not run here", function() return collectgarbage("isrunning") end)
