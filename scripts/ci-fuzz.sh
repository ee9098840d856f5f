#!/usr/bin/env bash
# Builds QIsle's libFuzzer targets with clang-14 (address + undefined
# sanitizers on the library and the targets) and runs each for a bounded
# time, starting from the seed corpus in tests/fuzz/corpus/<target>/.
# Fails on any crash, sanitizer report, leak or hang.
#
#   scripts/ci-fuzz.sh [build-dir]      (default: build-fuzz in the source tree)
#   FUZZ_SECONDS=60                     per target
#   FUZZ_TARGETS="fuzz_value fuzz_eval" which ones
#
# Findings are left in <build-dir>/fuzz-artifacts/; reproduce one with
#   <build-dir>/tests/fuzz/<target> <artifact>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-fuzz_value fuzz_eval}
jobs=$(nproc)

"$root/scripts/install-deps.sh" # clang-14 and libclang-rt-14-dev among them

echo "=== fuzz: configure and build in $build ($(date +%T))"
sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_CXX_FLAGS="$sanitize" \
    -DQISLE_BUILD_FUZZERS=ON -DQISLE_BUILD_TESTING=OFF -DQISLE_BUILD_BENCHMARKS=OFF \
    -DQISLE_BUILD_DEMO=OFF -DQISLE_BUILD_QML=OFF -DQISLE_INSTALL=OFF
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export QT_QPA_PLATFORM=offscreen
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for target in $targets; do
    seeds="$root/tests/fuzz/corpus/$target"
    work="$build/fuzz-corpus/$target" # grows here; the committed seeds stay as they are
    mkdir -p "$work"
    dict=() # tests/fuzz/<target>.dict: words the mutator splices in (Lua, isle.*)
    [ -f "$root/tests/fuzz/$target.dict" ] && dict=(-dict="$root/tests/fuzz/$target.dict")
    echo "=== fuzz: $target for ${seconds}s ($(date +%T))"
    if ! "$build/tests/fuzz/$target" "${dict[@]}" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
        "$work" "$seeds" </dev/null; then
        echo "=== fuzz: $target FAILED; artifacts in $artifacts:" >&2
        ls -l "$artifacts" >&2 || true
        status=1
    fi
done
exit $status
