#!/usr/bin/env bash
# Builds README's five-minute tour (tests/consumer) against an installed QIsle
# and against the source tree, runs both, and checks that each prints what the
# tour's `// prints ...` comments say. Usage: run.sh <source dir> <scratch dir>
set -euo pipefail
src=$1
work=$2
rm -rf "$work" && mkdir -p "$work"

# run <build dir> [env...]: runs the tour, shows its output, checks it.
run() {
    local build=$1 out line missing=0
    shift
    if ! out=$(env "$@" QT_MESSAGE_PATTERN='%{message}' QT_QPA_PLATFORM=offscreen "$build/consumer" 2>&1); then
        printf '%s\n' "$out"
        echo "consumer: the tour failed ($build)" >&2
        return 1
    fi
    printf '%s\n' "$out"
    while IFS= read -r line; do
        if ! grep -qxF -- "$line" <<<"$out"; then
            echo "consumer: the tour did not print: $line" >&2
            missing=1
        fi
    done < "$build/tour-expected.txt"
    return $missing
}

cmake -S "$src" -B "$work/lib" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQISLE_BUILD_TESTING=OFF \
    -DQISLE_BUILD_BENCHMARKS=OFF -DQISLE_BUILD_DEMO=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" > /dev/null
cmake --build "$work/lib" > /dev/null
cmake --install "$work/lib" > /dev/null

echo "== find_package(QIsle) of the installed package"
cmake -S "$src/tests/consumer" -B "$work/package" -G Ninja -DQISLE_CONSUMER_MODE=package \
    -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/package" > /dev/null
run "$work/package" LD_LIBRARY_PATH="$work/prefix/lib:${LD_LIBRARY_PATH:-}"

echo "== add_subdirectory() of the source tree"
cmake -S "$src/tests/consumer" -B "$work/subdir" -G Ninja -DQISLE_CONSUMER_MODE=subdir > /dev/null
cmake --build "$work/subdir" > /dev/null
run "$work/subdir"
echo "consumer: README's tour built and ran both ways (package and subdir)"
