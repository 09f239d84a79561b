#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run calls it):
#   1. set-up (packages, build with warnings as errors) and every CTest: unit tests, MPI tests
#      at 1-4 ranks, CLI/end-to-end tests (bad inputs, numpy/h5py/Pillow cross-checks, fuzzers);
#   2. a second build with AddressSanitizer + UndefinedBehaviorSanitizer running the suite
#      again (fuzzers excepted: they are built with sanitizers already);
#   3. valgrind memcheck over every serial unit test.
# Exits non-zero if anything fails; the last line is "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
JOBS=$(nproc)
LOG=$(mktemp)
passed=0 failed=0
count() { # add the counts of a ctest log
  local line; line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$1" | tail -1)
  local tot fl; tot=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); fl=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  passed=$((passed + tot - fl)); failed=$((failed + fl))
}
finish() { echo "$passed passed, $failed failed"; [[ $failed -eq 0 ]]; }

bash tools/setup.sh
echo "== ctest (build/)"
(cd build && ctest --output-on-failure -j"$JOBS" --timeout 900) 2>&1 | tee "$LOG" || true
count "$LOG"

echo "== sanitizers (build-asan/: address,undefined)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRDML_WERROR=ON \
  -DRDML_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$JOBS" >/dev/null
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitize/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Under MPI, Open MPI's dlopen'ed plug-ins leak at exit from "<unknown module>" frames that
# no suppression can name: address and UB checks stay on everywhere, leak checks only for
# the tests that never start MPI (valgrind below checks leaks of the others).
serial=$(grep -L 'MPI_Init' tests/unit/test_*.c | xargs -n1 basename | sed 's/\.c$//' | paste -sd'|')
(cd build-asan && ctest --output-on-failure -j"$JOBS" -R "^unit\.($serial)\$" --timeout 900) \
  2>&1 | tee "$LOG" || true
count "$LOG"
(cd build-asan && ASAN_OPTIONS="detect_leaks=0:abort_on_error=0" ctest --output-on-failure \
  -j"$JOBS" -E "^unit\.($serial)\$|fuzz" --timeout 1800) 2>&1 | tee "$LOG" || true
count "$LOG"

echo "== valgrind (serial unit tests)"
for t in build/tests/test_*; do
  [[ -x "$t" ]] || continue
  name=$(basename "$t")
  grep -q "unit.$name\b" <(cd build && ctest -N -L unit) || continue
  if (cd build/tests && RDML_FIXTURES="$PWD/../../tests/fixtures" RDML_SRC="$PWD/../.." \
        valgrind -q --num-callers=40 --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite \
        --suppressions=/usr/share/openmpi/openmpi-valgrind.supp \
        --suppressions="$PWD/../../tests/sanitize/valgrind.supp" \
        "./$name" >/dev/null 2>"../valgrind-$name.log"); then
    echo "valgrind: $name clean"; passed=$((passed + 1))
  else
    echo "valgrind: $name FAILED (build/valgrind-$name.log)"; head -50 "build/valgrind-$name.log"
    failed=$((failed + 1))
  fi
done
rm -f "$LOG"
finish
