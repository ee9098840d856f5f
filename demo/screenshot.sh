#!/usr/bin/env bash
# Regenerates the panel's pictures offscreen: docs/panel.png (the download
# example half-way, the console answering meanwhile, a macro that sleeps) and
# docs/panel-canvas.png (the canvas example). Usage: demo/screenshot.sh <build dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
panel=$1/demo/qisle-panel
export QT_QPA_PLATFORM=offscreen
"$panel" --example download --run \
  --console '1 + 1' \
  --console 'isle.sleep(60000) print("a minute later")' \
  --console 'math.sqrt(2)' \
  --screenshot "$root/docs/panel.png" --screenshot-after 1700
"$panel" --example canvas --run --screenshot "$root/docs/panel-canvas.png"
echo "wrote $root/docs/panel.png and $root/docs/panel-canvas.png"
