-- Downloads that the application performs: app.download(url) returns a
-- QFuture (a QTimer in the GUI thread fills it) and the script waits for it
-- without holding the Lua thread. Four at once, each a task; a channel
-- reports each one as it ends. Meanwhile type `1 + 1` in the console: it
-- answers at once. Running lists the script and every download, each with
-- its own Stop (stopping the script cancels its downloads).
local urls = {
  "https://example.org/releases/qt-everywhere-src-6.4.2.tar.xz",
  "https://example.org/releases/lua-5.4.6.tar.gz",
  "https://example.org/docs/reference-manual.pdf",
  "https://example.org/missing/404",
}

local done = isle.channel()
for _, url in ipairs(urls) do
  isle.spawn(function()
    local ok, body = pcall(app.download, url) -- waits; a failure is an error
    done:send({ url = url, ok = ok, size = ok and #body or 0, err = not ok and body or nil })
  end)
end

local total = 0
for i = 1, #urls do
  local r = done:recv() -- the first to finish, then the next
  local name = r.url:match("[^/]+$")
  if r.ok then
    total = total + r.size
    print(("%-32s %9d bytes"):format(name, r.size))
  else
    print(("%-32s failed: %s"):format(name, r.err))
  end
  isle.progress(i, #urls, ("%d of %d downloads ended"):format(i, #urls))
end
return ("%d bytes in %d files"):format(total, #urls - 1)
