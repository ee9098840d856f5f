#!/usr/bin/env bash
# Regenerates docs/qml-console.png: the console under Xvfb, a few lines typed,
# a long job caught half-way. Usage: demo/qml/screenshot.sh <build dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
console=$1/demo/qml/qisle-qml-console
if [[ ${2:-} == --grab ]]; then # inside Xvfb
    export QT_QUICK_BACKEND=software LIBGL_ALWAYS_SOFTWARE=1
    "$console" \
      --run 'print("hello from " .. _VERSION .. " on its own thread")' \
      --run 'string.format("%.5f", math.pi), 2^10' \
      --run '{1, 2, {x = 3, name = "isle"}}' \
      --run 'function fib(n)' \
      --run '  if n < 2 then return n end return fib(n - 1) + fib(n - 2)' \
      --run 'end' \
      --run 'fib(25)' \
      --run 'for i = 1, 3 do isle.emit(i * i) end' \
      --run 'local t = nil' \
      --run 'error("something went wrong")' \
      --run 'for i = 1, 100 do isle.progress(i, 100, "step " .. i .. " of 100") isle.sleep(100) end' &
    pid=$!
    sleep 6
    import -window root "$3"
    kill "$pid"
    exit 0
fi
shot=$(mktemp --suffix=.png)
xvfb-run -a -s "-screen 0 1280x800x24" "$0" "$1" --grab "$shot"
convert "$shot" -crop 900x560+0+0 +repage "$root/docs/qml-console.png"
rm -f "$shot"
echo "wrote $root/docs/qml-console.png"
