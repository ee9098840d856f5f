#!/usr/bin/env bash
# Regenerates docs/qml-console.png: the console offscreen, a few lines typed
# (each once the previous one ended, or after a second if it still runs), a
# long macro caught half-way while later lines got their answers; and
# docs/qml-console-ui.png: lines that drive the console's stage (ui.*).
# Usage: demo/qml/screenshot.sh <build dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
console=$1/demo/qml/qisle-qml-console
QT_QPA_PLATFORM=offscreen QT_QUICK_BACKEND=software "$console" \
  --run 'print("hello from " .. _VERSION .. " on its own thread")' \
  --run 'function fib(n)' \
  --run '  if n < 2 then return n end return fib(n - 1) + fib(n - 2)' \
  --run 'end' \
  --run 'fib(25)' \
  --run 'for i = 1, 100 do isle.progress(i, 100, "step " .. i .. " of 100") isle.sleep(100) end' \
  --run 'isle.sleep(1500) return "woke up"' \
  --run '{1, 2, {x = 3, name = "isle"}}' \
  --run 'for i = 1, 3 do isle.emit(i * i) end' \
  --run 'error("something went wrong")' \
  --run 'ui.label.text = "set while others run"' \
  --run 'isle.sleep(60000) print("a minute later")' \
  --screenshot "$root/docs/qml-console.png"
QT_QPA_PLATFORM=offscreen QT_QUICK_BACKEND=software "$console" \
  --run 'print("hello from " .. _VERSION .. " on its own thread")' \
  --run 'ui.stage.color = "#174ea6"' \
  --run 'ui.label.text = "set from Lua"' \
  --run 'for _, w in ipairs({"ui.list", "is", "a", "ListModel"}) do ui.list:add(w) end' \
  --run 'conn = ui.button.clicked:connect(function() print("clicked: " .. ui.list.count .. " items") end)' \
  --run 'ui.list.count' \
  --run 'tostring(ui.button)' \
  --run 'ui.label.nope' \
  --run 'for i = 1, 100 do isle.progress(i, 100, "step " .. i .. " of 100") isle.sleep(100) end' \
  --screenshot "$root/docs/qml-console-ui.png"
echo "wrote $root/docs/qml-console.png and $root/docs/qml-console-ui.png"
