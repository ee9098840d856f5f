#!/usr/bin/env bash
# Installs QIsle with its QML module into a scratch prefix and builds a QML
# application against it both ways (import path, linked). Usage:
#   run.sh <source dir> <scratch dir>
set -euo pipefail
src=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
cmake -S "$src" -B "$work/lib" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQISLE_BUILD_TESTING=OFF \
    -DQISLE_BUILD_BENCHMARKS=OFF -DQISLE_BUILD_DEMO=OFF -DQISLE_BUILD_QML=ON \
    -DCMAKE_INSTALL_PREFIX="$work/prefix" > /dev/null
cmake --build "$work/lib" > /dev/null
cmake --install "$work/lib" > /dev/null
export LD_LIBRARY_PATH="$work/prefix/lib:${LD_LIBRARY_PATH:-}"
for mode in importpath link; do
    cmake -S "$src/tests/auto/qml/consumer" -B "$work/$mode" -G Ninja -DQISLE_QML_CONSUMER_MODE=$mode \
        -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
    cmake --build "$work/$mode" > /dev/null
    QT_QPA_PLATFORM=offscreen "$work/$mode/qml-consumer"
done
echo "qml-consumer: import path and linked builds OK"
