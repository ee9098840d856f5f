-- coroutine.resume and coroutine.wrap (replaced by QIsle so that a stop is
-- never swallowed) and the functions around them, as lua5.4 runs them.
local H = dofile("../harness.lua")
local case, out = H.case, H.out

-- A wrapped coroutine called again once dead.
local done = coroutine.wrap(function() return 1 end)
out("wrap first call", done())
case("wrap dead", done)
case("wrap dead again", done)

-- A wrapped coroutine that calls itself: running, not suspended.
local self
self = coroutine.wrap(function() return self() end)
case("wrap calls itself", self)
case("wrap after calling itself", self)

local selfCaught
selfCaught = coroutine.wrap(function()
  local ok, e = pcall(selfCaught)
  coroutine.yield(ok, e)
  return "still alive", coroutine.status(coroutine.running())
end)
case("wrap calls itself, caught", selfCaught)
case("wrap resumed after the caught self-call", selfCaught)
case("wrap dead after that", selfCaught)

-- A wrapped coroutine resumed from a coroutine it resumed: normal, not suspended.
local outer
outer = coroutine.wrap(function()
  local inner = coroutine.wrap(function() return outer() end)
  return inner()
end)
case("wrap resumed while normal", outer)

-- Error objects of every type through wrap: only strings get a position.
local function raiser(v, level)
  return coroutine.wrap(function() error(v, level) end)
end
case("wrap error string", raiser("boom"))
case("wrap error string level 0", raiser("boom", 0))
case("wrap error string level 2", raiser("boom", 2))
case("wrap error table", raiser({tag = "t"}))
case("wrap error nil", raiser(nil))
case("wrap error integer", raiser(42))
case("wrap error float", raiser(4.5))
case("wrap error true", raiser(true))
case("wrap error false", raiser(false))
case("wrap error function", raiser(print))
case("wrap error from a Lua caller", function()
  local f = raiser("from caller")
  return f() -- a Lua function calls the wrapped one: its position is added
end)
case("wrap error from a Lua caller, not a tail call", function()
  local f = raiser("from caller")
  local r = f()
  return r
end)
case("wrap runtime error", coroutine.wrap(function() local t = nil; return t.x end))
case("wrap arithmetic error", coroutine.wrap(function(a) return a + 1 end), {})

-- Values in and out.
local gen = coroutine.wrap(function(a, b)
  local c = coroutine.yield(a + b, "first")
  local d, e = coroutine.yield(c * 2)
  return d, e, "end"
end)
out("wrap 1", gen(1, 2))
out("wrap 2", gen(10))
out("wrap 3", gen("x", nil))
case("wrap 4", gen)
case("wrap no function", coroutine.wrap)
case("wrap a table", coroutine.wrap, {})
case("wrap nil", coroutine.wrap, nil)

-- To-be-closed variables of a wrapped coroutine that dies with an error are
-- closed (and a __close error replaces the error).
local log = {}
local closing = coroutine.wrap(function()
  local x <close> = setmetatable({}, {__close = function(_, e) log[#log + 1] = "closed with " .. H.show(e) end})
  error("inside")
end)
case("wrap closes tbc", closing)
out("wrap closes tbc log", table.concat(log, "; "))

local replacing = coroutine.wrap(function()
  local x <close> = setmetatable({}, {__close = function() error("from close") end})
  error("inside")
end)
case("wrap __close error replaces", replacing)

local replacingTable = coroutine.wrap(function()
  local x <close> = setmetatable({}, {__close = function() error({tag = "close"}) end})
  error("inside")
end)
case("wrap __close error table", replacingTable)

-- Suspended with a pending tbc: nothing closed until coroutine.close.
log = {}
local co = coroutine.create(function()
  local x <close> = setmetatable({}, {__close = function(_, e) log[#log + 1] = "closed " .. H.show(e) end})
  coroutine.yield(1)
end)
out("resume to yield", coroutine.resume(co))
out("status suspended", coroutine.status(co))
out("close suspended", coroutine.close(co))
out("close log", table.concat(log, "; "))
out("status after close", coroutine.status(co))
out("resume closed", coroutine.resume(co))

-- coroutine.resume: every outcome.
out("resume ok", coroutine.resume(coroutine.create(function(...) return ... end), 1, nil, 3))
out("resume yields", coroutine.resume(coroutine.create(function() coroutine.yield() end)))
out("resume error string", coroutine.resume(coroutine.create(function() error("e") end)))
out("resume error table", coroutine.resume(coroutine.create(function() error({tag = 1}) end)))
out("resume error nil", coroutine.resume(coroutine.create(function() error() end)))
out("resume error number", coroutine.resume(coroutine.create(function() error(7) end)))
local dead = coroutine.create(function() end)
coroutine.resume(dead)
out("resume dead", coroutine.resume(dead))
out("resume dead again", coroutine.resume(dead))
local errored = coroutine.create(function() error("x") end)
coroutine.resume(errored)
out("resume errored", coroutine.resume(errored))
out("status errored", coroutine.status(errored))
out("close errored", coroutine.close(errored))
out("status after close errored", coroutine.status(errored))
out("resume itself", coroutine.resume(coroutine.create(function()
  return coroutine.resume(coroutine.running())
end)))
local main = coroutine.running()
out("resume main", coroutine.resume(main))
local parent
parent = coroutine.create(function()
  local child = coroutine.create(function() return coroutine.resume(parent) end)
  return coroutine.resume(child)
end)
out("resume normal", coroutine.resume(parent))
case("resume nil", coroutine.resume, nil)
case("resume none", coroutine.resume)
case("resume a function", coroutine.resume, print)
case("resume a table", coroutine.resume, {})

-- status, running, isyieldable, close.
local statusCo
statusCo = coroutine.create(function()
  local inner = coroutine.create(function() return coroutine.status(statusCo) end)
  out("status inside: running", coroutine.status(statusCo))
  out("status of the resumer: normal", coroutine.resume(inner))
  out("running inside", select(2, coroutine.running()))
  out("isyieldable inside", coroutine.isyieldable())
  out("isyieldable of main inside", coroutine.isyieldable(main))
  coroutine.yield()
end)
out("status new", coroutine.status(statusCo))
coroutine.resume(statusCo)
out("status yielded", coroutine.status(statusCo))
coroutine.resume(statusCo)
out("status dead", coroutine.status(statusCo))
case("status nil", coroutine.status, nil)
case("close running", coroutine.close, main)
case("close normal", function()
  local c
  c = coroutine.create(function()
    return coroutine.wrap(function() return coroutine.close(c) end)()
  end)
  return coroutine.resume(c)
end)
case("close new", coroutine.close, coroutine.create(print))
case("close nil", coroutine.close)
case("isyieldable a number", coroutine.isyieldable, 1)

-- yield across pcall and metamethods inside a coroutine.
local acrossPcall = coroutine.wrap(function()
  local ok, v = pcall(function() return coroutine.yield("in pcall") end)
  local ok2, e = pcall(function() coroutine.yield("in second pcall"); error("after yield") end)
  return ok, v, ok2, e
end)
out("yield across pcall 1", acrossPcall())
out("yield across pcall 2", acrossPcall("resumed value"))
out("yield across pcall 3", acrossPcall())
local acrossXpcall = coroutine.wrap(function()
  return xpcall(function() coroutine.yield("in xpcall"); error({tag = "x"}) end,
                function(m) return {tag = "handled " .. tostring(m.tag)} end)
end)
out("yield across xpcall 1", acrossXpcall())
out("yield across xpcall 2", acrossXpcall())
local acrossMeta = coroutine.wrap(function()
  local t = setmetatable({}, {__index = function(_, k) return coroutine.yield(k) end})
  return t.field
end)
out("yield in __index 1", acrossMeta())
out("yield in __index 2", acrossMeta("answer"))
case("yield across a C boundary", coroutine.wrap(function()
  table.sort({3, 2, 1}, function(a, b) coroutine.yield() return a < b end)
end))

-- Deep chains of wraps.
local function chain(n)
  if n == 0 then return coroutine.wrap(function() error("deep") end) end
  local inner = chain(n - 1)
  return coroutine.wrap(function() return inner() end)
end
case("wrap chain of 10", chain(10))
local function resumeChain(n)
  if n == 0 then return coroutine.create(function() error({tag = "deep"}) end) end
  local inner = resumeChain(n - 1)
  return coroutine.create(function() return coroutine.resume(inner) end)
end
out("resume chain of 10", coroutine.resume(resumeChain(10)))
-- How deep wraps and resumes nest before Lua's C stack limit, against a
-- plain C function that calls back through one lua_call (string.gsub): the
-- host's own nesting cancels out, what remains is what each call costs.
-- Only the kind of failure is shown: where exactly the limit falls depends
-- on the host.
local function depth(nest)
  local n, message = 0, nil
  local function f()
    n = n + 1
    local ok, e = pcall(nest, f)
    if not ok and message == nil then message = e end
    return "x"
  end
  f()
  return n, message
end
local reference = depth(function(f) return string.gsub("x", "x", f) end)
local function relative(label, nest)
  local n, message = depth(nest)
  out(label, n - reference, type(message), tostring(message):match("C stack overflow") ~= nil)
end
relative("C stack limit through wraps", function(f) return coroutine.wrap(f)() end)
relative("C stack limit through resumes", function(f)
  local ok, e = coroutine.resume(coroutine.create(f))
  if not ok then error(e, 0) end
end)
relative("C stack limit through wrap's error", function(f)
  return coroutine.wrap(function() f() error("unwinding") end)()
end)
