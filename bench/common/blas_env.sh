# Sourced by every bench/*/run.sh: one BLAS setting for all the programs a benchmark compares,
# and a way to print which OpenBLAS kernel each of them really runs.
#
#   . "$HERE/../common/blas_env.sh"
#
# BENCH_CORETYPE chooses the OpenBLAS kernel for EVERY program of the run (rdmlearn, its bench
# drivers, numpy, PyTorch, scikit-learn) alike:
#   unset or ""   keep the environment as it is (this machine's environment sets
#                 OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE);
#   auto          unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE: OpenBLAS picks the kernel for
#                 the CPU it finds (Cooperlake, i.e. AVX-512, on this machine);
#   NAME          export OPENBLAS_CORETYPE=NAME (e.g. Haswell, SkylakeX, Cooperlake).
# Nothing here changes a variable for one side only: a ratio between two programs measured
# with different kernels says nothing about the programs.
#
# Functions:
#   bench_kernel numpy|torch     the kernel the Python side runs (bench/common/blas_probe.py)
#   bench_kernel exe PATH        the kernel of the OpenBLAS that PATH links, in this environment
#   bench_same_kernel A KA B KB  print "BLAS kernel: A KA, B KB" and fail when they differ
#   bench_blas_line ARGS         the full line of blas_probe.py ARGS (kernel, threads, library)
BENCH_COMMON=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_PY=${PYTHON:-/usr/bin/python3}

case "${BENCH_CORETYPE:-}" in
  "") ;;
  auto) unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE ;;
  *) export OPENBLAS_CORETYPE="$BENCH_CORETYPE" ;;
esac
echo "== BLAS environment for every program of this run: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset: detected>}" \
  "OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-<unset>} (BENCH_CORETYPE=${BENCH_CORETYPE:-<keep>})"

bench_kernel() {
  "$BENCH_PY" "$BENCH_COMMON/blas_probe.py" --name "$@"
}

bench_blas_line() {
  "$BENCH_PY" "$BENCH_COMMON/blas_probe.py" "$@"
}

bench_same_kernel() {
  echo "BLAS kernel: $1 $2, $3 $4"
  if [ "$2" != "$4" ]; then
    echo "error: $1 and $3 would run different OpenBLAS kernels ($2 vs $4); their ratio would" \
      "compare kernels, not programs (hint: set BENCH_CORETYPE for both, see bench/common/blas_env.sh)" >&2
    return 1
  fi
}
