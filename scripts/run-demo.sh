#!/usr/bin/env bash
# Installs what is needed, builds QIsle and launches the demo scripting panel.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build-demo" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DQISLE_BUILD_TESTING=OFF -DQISLE_BUILD_BENCHMARKS=OFF -DQISLE_BUILD_DEMO=ON
cmake --build "$root/build-demo" --target qisle-panel
exec "$root/build-demo/demo/qisle-panel" "$@"
