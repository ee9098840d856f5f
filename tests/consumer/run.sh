#!/usr/bin/env bash
# Builds tests/consumer against an installed QIsle and against the source
# tree, and runs it. Usage: run.sh <source dir> <scratch dir>
set -euo pipefail
src=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
cmake -S "$src" -B "$work/lib" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQISLE_BUILD_TESTING=OFF \
    -DQISLE_BUILD_BENCHMARKS=OFF -DQISLE_BUILD_DEMO=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" > /dev/null
cmake --build "$work/lib" > /dev/null
cmake --install "$work/lib" > /dev/null
cmake -S "$src/tests/consumer" -B "$work/package" -G Ninja -DQISLE_CONSUMER_MODE=package \
    -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/package" > /dev/null
LD_LIBRARY_PATH="$work/prefix/lib:${LD_LIBRARY_PATH:-}" "$work/package/consumer"
cmake -S "$src/tests/consumer" -B "$work/subdir" -G Ninja -DQISLE_CONSUMER_MODE=subdir > /dev/null
cmake --build "$work/subdir" > /dev/null
"$work/subdir/consumer"
echo "consumer: package and subdir builds OK"
