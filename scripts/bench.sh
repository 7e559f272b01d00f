#!/usr/bin/env bash
# make bench: builds with -O2, runs every benchmark program (each runs its baseline in the
# same process run) and rewrites docs/benchmarks.md with their rows, the date and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DSN_TESTS=OFF -DSN_BENCH=ON >/dev/null
cmake --build build/bench -j "$(nproc)" >/dev/null

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
# A benchmark that fails is a row that says so: the others' figures are still written, and
# make bench still fails at the end.
failed=0
for b in build/bench/bench_*; do
    [[ -x "$b" ]] || continue
    echo "running $(basename "$b") ..." >&2
    if ! "$b" | tee -a "$rows"; then
        echo "| $(basename "$b") | the benchmark failed (see its output above the table) | - | - | - | - | **failed** |" \
            | tee -a "$rows"
        failed=1
    fi
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` ($(basename "$0")); do not edit by hand."
    echo "Each figure was measured beside its baseline in the same process run."
    echo "Ratio is figure / baseline; the target says which way is better."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
    echo "- build: -O2, $(cc --version | head -1)"
    echo
    echo "| area | benchmark | figure | baseline | ratio | target | verdict |"
    echo "|---|---|---|---|---|---|---|"
    cat "$rows"
    if [[ -f docs/benchmarks-notes.md ]]; then
        echo
        cat docs/benchmarks-notes.md
    fi
} > docs/benchmarks.md
echo "wrote docs/benchmarks.md" >&2
[[ $failed -eq 0 ]] || { echo "make bench: a benchmark failed (its row says which)" >&2; exit 1; }
