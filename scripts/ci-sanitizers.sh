#!/usr/bin/env bash
# Builds QIsle's tests twice -- with ThreadSanitizer, and with AddressSanitizer
# + UndefinedBehaviorSanitizer -- runs them, and fails on any report.
#
#   scripts/ci-sanitizers.sh            # both
#   scripts/ci-sanitizers.sh tsan       # one of: tsan asan
#
# Build dirs: build-tsan, build-asan (-O1 -g; library and tests only).
# Qt is not instrumented: tests/sanitizers/*.supp hold the few suppressions
# for Qt's own internals, each with its reason. Never suppress QIsle code.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
# Sanitized code runs 5-15x slower: the stress test does a fifth of its work.
export QISLE_STRESS_SCALE=${QISLE_STRESS_SCALE:-0.2}
jobs=$(nproc)
supp="$root/tests/sanitizers"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

# Not built or run under sanitizers:
# - *consumer_builds configure and build separate projects with the system
#   compiler (packaging tests; nothing of them is instrumented);
# - the QML module and tst_qml: LeakSanitizer reports allocations inside Qt
#   Quick/Gui themselves (QSGTexture, QImageData, ...) that outlive the test;
#   QIsle's core paths are covered by the other tests.
exclude='consumer_builds|^tst_qml$'

section() { echo; echo "=== $1 ($(date +%T))"; }

# configure_and_build DIR FLAGS...
configure_and_build() {
    local dir=$1; shift
    cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug "${launcher[@]}" \
        -DQISLE_BUILD_TESTING=ON -DQISLE_BUILD_BENCHMARKS=OFF -DQISLE_BUILD_DEMO=OFF \
        -DQISLE_BUILD_QML=OFF -DQISLE_INSTALL=OFF \
        "-DCMAKE_CXX_FLAGS=-O1 -g -fno-omit-frame-pointer $*" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

# run_ctest DIR: every test must pass and no sanitizer may have spoken, even
# in a test that exited 0 (a report from a thread the test did not wait for).
run_ctest() {
    local dir=$1 status=0
    ctest --test-dir "$dir" -E "$exclude" --output-on-failure -j "$jobs" --timeout 900 || status=1
    if grep -qE 'WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer|runtime error:' \
            "$dir/Testing/Temporary/LastTest.log"; then
        echo "sanitizer reports found in $dir/Testing/Temporary/LastTest.log"
        status=1
    fi
    return $status
}

run_tsan() {
    local dir="$root/build-tsan" t0=$SECONDS
    section "ThreadSanitizer: build"
    configure_and_build "$dir" -fsanitize=thread
    # Shows TSan the hand-offs Qt orders inside its uninstrumented library
    # (see the file). Lazy binding: its __tsan_* calls resolve in the tests,
    # which carry the TSan runtime, never in ctest itself.
    "${CXX:-c++}" -shared -fPIC -O1 -g -Wl,-z,lazy "$supp/tsan_qt_sync.cpp" -o "$dir/libtsan_qt_sync.so" -ldl
    local t1=$SECONDS
    section "ThreadSanitizer: tests"
    # The signal-based stop mode cannot work under TSan (it defers signals):
    # use the always-on hook.
    local status=0
    QISLE_STOP_MODE=hook LD_PRELOAD="$dir/libtsan_qt_sync.so" \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=7 suppressions=$supp/tsan.supp" \
        run_ctest "$dir" || status=1
    echo "ThreadSanitizer: build $((t1 - t0)) s, tests $((SECONDS - t1)) s"
    return $status
}

run_asan() {
    local dir="$root/build-asan" t0=$SECONDS
    section "AddressSanitizer + UndefinedBehaviorSanitizer: build"
    configure_and_build "$dir" -fsanitize=address,undefined -fno-sanitize-recover=undefined
    local t1=$SECONDS
    section "AddressSanitizer + UndefinedBehaviorSanitizer: tests"
    local status=0
    # detect_leaks: LeakSanitizer runs at exit of every test as well.
    ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 strict_string_checks=1 check_initialization_order=1 suppressions=$supp/asan.supp" \
    LSAN_OPTIONS="suppressions=$supp/lsan.supp print_suppressions=0" \
    UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 suppressions=$supp/ubsan.supp" \
        run_ctest "$dir" || status=1
    echo "ASan+UBSan: build $((t1 - t0)) s, tests $((SECONDS - t1)) s"
    return $status
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(tsan asan)
failed=()
start=$SECONDS
for part in "${parts[@]}"; do
    case $part in
        tsan) run_tsan || failed+=(tsan) ;;
        asan) run_asan || failed+=(asan) ;;
        *) echo "unknown part '$part' (tsan, asan)"; exit 2 ;;
    esac
done
echo
echo "sanitizers: ${parts[*]} in $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "sanitizers FAILED: ${failed[*]}"
    exit 1
fi
echo "sanitizers: no reports"
