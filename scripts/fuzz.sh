#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets with clang (ASan+UBSan) and runs each one for
# SECONDS (default 60) over its checked-in corpus; new inputs go to build/fuzz/new-NAME,
# never into tests/fuzz/corpus (add a finding there by hand, as a regression input).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DSN_FUZZ=ON -DSN_SANITIZE=address -DSN_TESTS=OFF -DSN_BENCH=OFF >/dev/null
cmake --build build/fuzz -j "$(nproc)" >/dev/null
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    mkdir -p "build/fuzz/new-$name"
    echo "=== $name for ${seconds}s"
    "build/fuzz/$name" -max_total_time="$seconds" -print_final_stats=1 \
        "build/fuzz/new-$name" "tests/fuzz/corpus/$name" 2>&1 | tail -25
done
