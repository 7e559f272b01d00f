#!/usr/bin/env bash
# Everything `make test` runs, in order: a warnings-as-errors release build (the binary of
# `make run`), then the sanitizer build (ASan+UBSan) with the criterion unit tests, the fuzz
# corpora and the Lua script tests. Each runner prints its own closing summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
status=0
summary=()

step() { echo; echo "=== $*"; }

step "layers (scripts/check-layers.py)"
mkdir -p build
python3 scripts/check-layers.py --self-test | tee build/layers-self-test.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
summary+=("$(tail -1 build/layers-self-test.log)")
python3 scripts/check-layers.py | tee build/layers.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
summary+=("$(tail -1 build/layers.log)")

step "release build (-Werror)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSN_WERROR=ON -DSN_TESTS=OFF >/dev/null &&
    cmake --build build/release -j "$jobs" >/dev/null && ln -sf release/stage-node build/stage-node ||
    { echo "release build failed"; exit 1; }

step "sanitizer build (ASan+UBSan, -Werror)"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSN_WERROR=ON -DSN_SANITIZE=address >/dev/null &&
    cmake --build build/asan -j "$jobs" >/dev/null ||
    { echo "sanitizer build failed"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

step "unit tests and fuzz corpora (criterion, ctest, ASan)"
(cd build/asan && ctest --output-on-failure -j "$jobs") | tee build/ctest.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
summary+=("unit: $(grep -E 'tests passed' build/ctest.log | tail -1)")

script_dirs="tests/lua/seed tests/lua/sandbox tests/lua/errors tests/lua/threads tests/lua/messages tests/lua/governor tests/lua/isolation tests/lua/compat tests/lua/stage tests/lua/libs tests/lua/stdlua tests/lua/stages tests/lua/samples tests/lua/curl tests/lua/broker tests/lua/odbc"

step "Lua script tests (real binary, ASan)"
lua5.3 tests/lua/run.lua build/asan/stage-node $script_dirs | tee build/scripts.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
summary+=("ASan $(tail -1 build/scripts.log)")

# Criterion's test runner (boxfort) cannot map its arena under TSan, so the TSan build runs
# the script tests: the real binary, whose workers, mailboxes, jobs and starred store are
# exactly what the criterion tests of those modules exercise.
step "thread sanitizer build (TSan) and the tests that use threads"
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DSN_WERROR=ON -DSN_SANITIZE=thread -DSN_BENCH=OFF \
      -DSN_TESTS=OFF >/dev/null &&
    cmake --build build/tsan -j "$jobs" >/dev/null || { echo "TSan build failed"; exit 1; }
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
# Every message costs about ten times more under TSan: the flood test sends 200,000, not 1,000,000.
export SN_FLOOD_MESSAGES=200000
lua5.3 tests/lua/run.lua build/tsan/stage-node $script_dirs | tee build/scripts-tsan.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
unset SN_FLOOD_MESSAGES
summary+=("TSan $(tail -1 build/scripts-tsan.log)")

# The cluster suite: real processes on loopback, network namespaces and tc for partitions and
# slow links (CI runs as root), a real Prometheus and headless Chromium. ASan binary.
step "cluster and operations tests (real processes, ASan)"
/usr/bin/python3 tests/cluster/run.py --binary build/asan/stage-node | tee build/cluster.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
summary+=("$(tail -1 build/cluster.log)")

step "deployment files (offline checks)"
scripts/deploy-check.sh | tee build/deploy-check.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
summary+=("$(tail -1 build/deploy-check.log)")

step "summary"
printf '%s\n' "${summary[@]}"
[[ $status -eq 0 ]] && echo "make test: all passed" || echo "make test: FAILED"
exit $status
