#!/usr/bin/env bash
# Installs what is needed, builds QIsle and runs every test (what CI runs):
# the test suite, the leak check, the sanitizer builds, the fuzzers, and the
# benchmark's quick mode (a smoke test: it reports, it never fails on speed).
#
#   scripts/run-tests.sh            # everything
#   QISLE_CI_PARTS="tests valgrind sanitizers fuzz" scripts/run-tests.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
parts=${QISLE_CI_PARTS:-tests valgrind sanitizers fuzz}
jobs=$(nproc)
started=$(date +%s)
summary=()

section() { echo; echo "=== $1 ($(date +%T))"; }
timed() { # name command...
    local name=$1 t0
    shift
    t0=$(date +%s)
    "$@"
    summary+=("$(printf '%-12s %5d s' "$name" $(($(date +%s) - t0)))")
}

build_and_test() {
    section "build and test (RelWithDebInfo; includes the consumer builds and qisle-bench --quick)"
    cmake -S "$root" -B "$root/build-ci" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DQISLE_BUILD_TESTING=ON -DQISLE_BUILD_BENCHMARKS=ON \
        -DQISLE_BUILD_DEMO=ON
    cmake --build "$root/build-ci" -j "$jobs"
    ctest --test-dir "$root/build-ci" --output-on-failure -j "$jobs"
}

for part in $parts; do
    case $part in
    tests) timed tests build_and_test ;;
    valgrind) section "valgrind memcheck"; timed valgrind "$root/scripts/ci-valgrind.sh" build-ci ;;
    sanitizers) section "sanitizers"; timed sanitizers "$root/scripts/ci-sanitizers.sh" ;;
    fuzz) section "fuzzing"; timed fuzz "$root/scripts/ci-fuzz.sh" ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
    esac
done

section "summary"
printf '%s\n' "${summary[@]}"
echo "total        $(($(date +%s) - started)) s"
