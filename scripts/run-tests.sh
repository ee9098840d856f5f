#!/usr/bin/env bash
# Installs what is needed, builds QIsle and runs every test (what CI runs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
jobs=$(nproc)

section() { echo; echo "=== $1 ($(date +%T))"; }

section "build and test (RelWithDebInfo)"
cmake -S "$root" -B "$root/build-ci" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DQISLE_BUILD_TESTING=ON -DQISLE_BUILD_BENCHMARKS=ON -DQISLE_BUILD_DEMO=ON
cmake --build "$root/build-ci" -j "$jobs"
ctest --test-dir "$root/build-ci" --output-on-failure -j "$jobs"
