-- The script's top level is Lua's main chunk: its own thread, the main one,
-- cannot yield; positions, levels and tracebacks read as under lua5.4.
local H = dofile("../harness.lua")
local case, out = H.case, H.out

local main, ismain = coroutine.running()
out("running", type(main), ismain)
out("isyieldable", coroutine.isyieldable())
out("isyieldable of the main thread", coroutine.isyieldable(main))
out("status of the main thread", coroutine.status(main))
case("yield at the top", coroutine.yield)
case("yield at the top with values", coroutine.yield, 1, 2)
case("yield from a function at the top", function() coroutine.yield() end)
out("main chunk varargs", select("#", ...))
local info = debug.getinfo(1, "Slnt")
out("main chunk info", info.what, info.source, info.short_src, info.currentline, info.linedefined, info.istailcall)
local caller = debug.getinfo(2, "S")
out("caller of the main chunk", caller and caller.what, caller and caller.source)
out("level 3", debug.getinfo(3, "S"))
out("traceback at the top", debug.traceback("here"))
out("traceback at level 2", debug.traceback("here", 2))
out("traceback of a message table", debug.traceback({tag = "tb"}))
out("where level 1", pcall(error, "e", 1))
case("error at the top, level 1", function() error("top") end)
case("error at the top, level 2", function() error("top", 2) end)
out("main thread seen from a coroutine", coroutine.wrap(function()
  local co, isMain = coroutine.running()
  return co == main, isMain, coroutine.status(main), coroutine.isyieldable()
end)())
out("a coroutine's traceback of the main thread", (coroutine.wrap(function()
  return (debug.traceback(main, "main from co"))
end)()))
local function locals()
  local r = {}
  local i = 1
  while true do
    local name = debug.getlocal(2, i)
    if not name then break end
    r[#r + 1] = name
    i = i + 1
  end
  return table.concat(r, ",")
end
out("main chunk locals", locals())
out("_ENV is _G", _ENV == _G)
out("_VERSION", _VERSION)
