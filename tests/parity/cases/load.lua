-- load, loadfile, dofile and require (replaced by QIsle so that no
-- precompiled chunk ever loads), as lua5.4 runs them on text chunks.
-- Precompiled chunks are refused on purpose: tst_safety covers them.
local H = dofile("../harness.lua")
local case, out = H.case, H.out

local function try(label, f, ...)
  -- load-like results: the function runs, its results are shown.
  local function go(...)
    local r = table.pack(...)
    if type(r[1]) == "function" then return "loaded", r[1]() end
    return ...
  end
  out(label, pcall(function(...) return go(f(...)) end, ...))
end

-- Modes: a text chunk.
for _, mode in ipairs({"t", "b", "bt", "tb", "", "x", "T", "tt", "bb"}) do
  try("load mode '" .. mode .. "'", load, "return 1", "=m", mode)
end
try("load mode nil", load, "return 1", "=m", nil)
try("load mode number", load, "return 1", "=m", 12)
try("load mode table", load, "return 1", "=m", {})
try("load mode false", load, "return 1", "=m", false)
try("load empty string mode 'b'", load, "", "=m", "b")
try("load empty string", load, "")

-- The chunk argument.
try("load a number", load, 42)
try("load a number that parses", load, 42, "=n")
try("load nil", load, nil)
try("load nothing", load)
try("load a table", load, {})
try("load true", load, true)
try("load a syntax error", load, "x x")
try("load a syntax error, named", load, "return +", "=named")
try("load unfinished string", load, "return 'abc")
try("load runtime error", load, "local t = nil\nreturn t.x", "=rt")
try("load with varargs", function() return load("return select('#', ...), ...")(1, nil, 3) end)

-- Chunk names.
for _, name in ipairs({"=plain", "@file.lua", "@", "=", "text chunk", "", "line one\nline two",
                       string.rep("x", 100), "@" .. string.rep("d/", 40) .. "f.lua",
                       "=" .. string.rep("y", 80)}) do
  local f = load("error('e')", name)
  out("chunk name " .. string.format("%q", name):sub(1, 20), pcall(f))
  out("  source", debug.getinfo(f, "S").source == name, debug.getinfo(f, "S").short_src)
end
out("default chunk name of a string", pcall(load("error('x')")))
out("default chunk name of a long string", pcall(load("error('x') -- " .. string.rep("z", 80))))
out("default chunk name of a reader", pcall(load(coroutine.wrap(function() coroutine.yield("error('r')") end))))
case("chunk name a table", load, "return 1", {})
out("chunk name a number", pcall(load("error('n')", 12)))

-- Readers.
local function reader(pieces)
  local i = 0
  return function() i = i + 1; return pieces[i] end
end
try("reader pieces", load, reader({"ret", "urn ", "1 ", "+ ", "41"}))
try("reader nothing", load, reader({}))
try("reader empty string ends", load, reader({"return 5", "", "+ 1"}))
try("reader numbers", load, reader({"return ", 4, 2}))
try("reader a table", load, reader({"return 1", {}}))
try("reader true", load, function() return true end)
try("reader error string", load, function() error("reader failed") end)
try("reader error table", load, function() error({tag = "reader"}) end)
try("reader error nil", load, function() error() end)
try("reader syntax error", load, reader({"return return"}))
try("reader mode 'b'", load, reader({"return 2"}), "=r", "b")
try("reader mode 't'", load, reader({"return 3"}), "=r", "t")
try("reader yields", function()
  return coroutine.wrap(function() return load(function() coroutine.yield() end) end)()
end)
try("reader named", load, reader({"error('in reader chunk')"}), "=readerchunk")
try("reader a callable table", load, setmetatable({}, {__call = function() return nil end}))

-- env.
try("env table", load, "return x", "=e", "t", {x = "from env"})
try("env nil", load, "return x", "=e", "t", nil)
try("env false", load, "return x", "=e", "t", false)
try("env none", load, "return type(_ENV)", "=e", "t")
try("env with a reader", load, reader({"return y"}), "=e", "t", {y = "reader env"})
try("env of a chunk without upvalues", function()
  local f = load("local a = 1", "=e", "t", {})
  return debug.getupvalue(f, 1)
end)

-- loadfile and dofile (files in data/).
try("loadfile ok", loadfile, "data/ok.lua")
try("loadfile ok, args", function() return loadfile("data/ok.lua")(1, nil, 3) end)
try("loadfile missing", loadfile, "data/missing.lua")
try("loadfile a directory", loadfile, "data")
try("loadfile syntax", loadfile, "data/syntax.lua")
try("loadfile runtime", loadfile, "data/runtime.lua")
try("loadfile shebang line", loadfile, "data/shebang.lua")
try("loadfile BOM", loadfile, "data/bom.lua")
try("loadfile empty", loadfile, "data/empty.lua")
for _, mode in ipairs({"t", "b", "bt", "x", ""}) do
  try("loadfile mode '" .. mode .. "'", loadfile, "data/env.lua", mode)
  try("loadfile syntax error, mode '" .. mode .. "'", loadfile, "data/syntax.lua", mode)
  try("loadfile missing, mode '" .. mode .. "'", loadfile, "data/missing.lua", mode)
end
try("loadfile env", loadfile, "data/env.lua", "t", {x = "file env"})
try("loadfile env nil", loadfile, "data/env.lua", "bt", nil)
try("loadfile mode table", loadfile, "data/env.lua", {})
try("loadfile name table", loadfile, {})
try("loadfile name number", loadfile, 12)
out("loadfile source", debug.getinfo(loadfile("data/ok.lua"), "S").source)

case("dofile ok", dofile, "data/ok.lua")
case("dofile nothing", dofile, "data/nothing.lua")
case("dofile varargs", dofile, "data/varargs.lua")
case("dofile missing", dofile, "data/missing.lua")
case("dofile syntax", dofile, "data/syntax.lua")
case("dofile runtime", dofile, "data/runtime.lua")
case("dofile index", dofile, "data/index.lua")
case("dofile a table", dofile, {})
case("dofile in a coroutine, yielding", coroutine.wrap(function()
  return dofile("data/ok.lua"), coroutine.isyieldable()
end))

-- require: the preload and Lua-file searchers (QIsle removes the C ones on
-- purpose, so both runs drop them here).
package.searchers[3] = nil
package.searchers[4] = nil
package.path = "./data/?.lua"
case("require a module", require, "mod")
case("require it again", require, "mod")
case("require with a dot", function() package.path = "./?.lua"; return require("data.mod") end)
package.path = "./data/?.lua"
case("require missing", require, "missing")
case("require a syntax error", require, "badmod")
case("require a runtime error", require, "errmod")
case("require nil result", require, "nothing")
case("require nil result again", require, "nothing")
case("require empty file", require, "empty")
package.preload.pre = function(...) return {tag = "preloaded"}, select("#", ...), ... end
case("require preload", require, "pre")
package.preload.prebad = function() error("preload failed") end
case("require preload error", require, "prebad")
case("require a number", require, 12)
case("require a table", require, {})
case("require nothing", require)
package.path = 5
case("require path a number", require, "five")
package.path = {}
case("require path a table", require, "tbl")
package.path = "./data/?.lua"
package.searchpath = function() return nil, "a replaced searchpath" end
case("require ignores a replaced searchpath", require, "ok")
case("package.searchpath itself", package.searchpath, "x", "./data/?.lua;./?.x")
case("searcher 2 directly", package.searchers[2], "varargs")
case("searcher 2 missing", package.searchers[2], "missing")
