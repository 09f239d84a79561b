#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run calls it):
#   1. set-up (packages, build with warnings as errors) and every CTest: unit tests, MPI tests
#      at 1-4 ranks, CLI/end-to-end tests (bad inputs, numpy/h5py/Pillow cross-checks, fuzzers);
#   2. a second build with AddressSanitizer + UndefinedBehaviorSanitizer running unit and MPI tests;
#   3. valgrind memcheck over every serial unit test.
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
JOBS=$(nproc)

bash tools/setup.sh
echo "== ctest (build/)"
(cd build && ctest --output-on-failure -j"$JOBS" --timeout 900)

echo "== sanitizers (build-asan/: address,undefined)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRDML_WERROR=ON \
  -DRDML_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$JOBS" >/dev/null
# Open MPI's own start-up allocations are not ours: suppress leaks inside its libraries.
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitize/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
(cd build-asan && ctest --output-on-failure -j"$JOBS" -L 'unit|mpi' --timeout 900)

echo "== valgrind (serial unit tests)"
fail=0
for t in build/tests/test_*; do
  [[ -x "$t" ]] || continue
  name=$(basename "$t")
  grep -q "unit.$name\b" <(cd build && ctest -N -L unit) || continue
  if ! (cd build/tests && RDML_FIXTURES="$PWD/../../tests/fixtures" RDML_SRC="$PWD/../.." \
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        "./$name" >/dev/null 2>"../valgrind-$name.log"); then
    echo "valgrind: $name FAILED (build/valgrind-$name.log)"; cat "build/valgrind-$name.log" | head -50
    fail=1
  else
    echo "valgrind: $name clean"
  fi
done
[[ $fail -eq 0 ]] || exit 1
echo "== all tests passed"
