-- The panel exposes its canvas (a QWidget of the GUI thread) as `canvas`:
-- each property write and method call below runs in the GUI thread, while
-- this script runs on the isle's own thread. Click the canvas afterwards.
canvas:clear()
canvas.background = "#fbfbfd"
local palette = { "#1a73e8", "#e8710a", "#188038", "#d93025", "#9334e6" }
-- width and height are QWidget's own (read-only) properties.
local cx, cy = canvas.width // 2, canvas.height // 2 - 10
local r = math.min(cx, cy) - 45
for i = 0, 23 do
  local angle = i * math.pi / 12
  canvas.pen = palette[i % #palette + 1]
  canvas:add(canvas.Circle, cx + math.floor(r * math.cos(angle)),
             cy + math.floor(r * math.sin(angle)), (16 + i * 2) * r // 150)
end
canvas.pen = "black"
canvas:addText("drawn from Lua: " .. canvas.shapeCount .. " shapes", 12, canvas.height - 12)

-- Each click runs this handler on the Lua thread, as a request of its own.
clicks = clicks or canvas.clicked:connect(function(x, y)
  canvas.pen = "#d93025"
  canvas:add(canvas.Cross, x, y, 14)
  print(("click at %d, %d (%d shapes)"):format(x, y, canvas.shapeCount))
end)
return canvas.shapeCount
