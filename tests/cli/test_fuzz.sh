#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz (a standalone CMake project compiled with clang,
# -fsanitize=fuzzer,address,undefined; no MPI needed) into $RDML_BUILD/fuzz and run each one
# for RDML_FUZZ_SECONDS (default 20) seconds on a *copy* of its seed corpus, so the committed
# corpus under tests/fuzz/corpus/ is never modified. Fails if a fuzzer finds a crash, a leak,
# undefined behaviour or a timeout; the reproducer is kept under $RDML_BUILD/fuzz/work/<name>/.
set -euo pipefail

: "${RDML_SRC:?RDML_SRC must point to the source tree (set by CTest)}"
: "${RDML_BUILD:?RDML_BUILD must point to the build tree (set by CTest)}"
SECONDS_EACH=${RDML_FUZZ_SECONDS:-20}
FUZZ_SRC="$RDML_SRC/tests/fuzz"
FUZZ_BUILD="$RDML_BUILD/fuzz"

fail() { echo "test_fuzz: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

command -v clang >/dev/null 2>&1 ||
    fail "clang not found (install: apt-get install clang libclang-rt-14-dev)"

# libFuzzer's runtime ships in libclang-rt-*-dev: check that clang can link a fuzzer.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    > "$probe_dir/probe.c"
clang -fsanitize=fuzzer,address,undefined "$probe_dir/probe.c" -o "$probe_dir/probe" \
    >"$probe_dir/log" 2>&1 ||
    fail "clang cannot link -fsanitize=fuzzer (install: apt-get install libclang-rt-14-dev): $(head -3 "$probe_dir/log")"

echo "== configure $FUZZ_BUILD"
cmake -S "$FUZZ_SRC" -B "$FUZZ_BUILD" -DCMAKE_C_COMPILER=clang >"$probe_dir/cfg.log" 2>&1 ||
    { cat "$probe_dir/cfg.log" >&2; fail "configuring the fuzz project failed"; }
echo "== build"
cmake --build "$FUZZ_BUILD" -j2 >"$probe_dir/build.log" 2>&1 ||
    { tail -40 "$probe_dir/build.log" >&2; fail "building the fuzzers failed"; }

mapfile -t fuzzers < "$FUZZ_BUILD/fuzzers.txt"
passed=0
failed=0
for name in "${fuzzers[@]}"; do
    [ -n "$name" ] || continue
    corpus_name=${name#fuzz_}
    work="$FUZZ_BUILD/work/$name"
    rm -rf "$work"
    mkdir -p "$work/corpus"
    if [ -d "$FUZZ_SRC/corpus/$corpus_name" ]; then
        cp -r "$FUZZ_SRC/corpus/$corpus_name/." "$work/corpus/"
    fi
    dict=()
    [ -f "$FUZZ_SRC/$corpus_name.dict" ] && dict=("-dict=$FUZZ_SRC/$corpus_name.dict")
    echo "== $name: ${SECONDS_EACH}s on $(ls "$work/corpus" | wc -l) seeds"
    if (cd "$work" && "$FUZZ_BUILD/$name" -max_total_time="$SECONDS_EACH" -timeout=10 \
            -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
            -artifact_prefix="$work/" "${dict[@]}" "$work/corpus" >"$work/log" 2>&1); then
        echo "   ok: $(grep -E '^stat::number_of_executed_units' "$work/log" | awk '{print $2}') runs"
        passed=$((passed + 1))
    else
        echo "   FAILED: $name found a problem; log and reproducer in $work" >&2
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$work/log" | head -10 >&2 || true
        failed=$((failed + 1))
    fi
done
[ $((passed + failed)) -gt 0 ] || fail "no fuzzer was built"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
