#!/bin/bash
# Encoding-model ridge benchmark: rdmlearn's ridge solver (rdml/ridge.h, leave-one-out alpha
# per target) against scikit-learn RidgeCV(alphas, alpha_per_target=True) on the SAME data and
# alphas, with the same BLAS kernel and thread count (bench/common/blas_env.sh; printed).
# usage: bench/encode/run.sh [N V D NALPHAS]     (default 2000 20000 512 20)
#        bench/encode/run.sh --full [N V D FOLDS NALPHAS [loo|kfold]]
#                                 (default 9841 39548 512 5 20: the full subject, rdmlearn
#                                  only, RANKS ranks with one BLAS thread each; prints time and
#                                  peak RSS per rank)
# env:   RDML_BENCH_DIR (default /tmp/rdml-bench-encode), REPS (default 3), THREADS (BLAS/OMP
#        threads of both sides, default 1), RANKS (default 2), MPIEXEC (default mpirun),
#        PYTHON, BENCH_CORETYPE (the OpenBLAS kernel of both sides), BENCH_EXHAUSTIVE=1
#        (rdmlearn evaluates every alpha's LOO error instead of pruning by bounds)
# rdmlearn prints how many alphas it evaluated exactly per target (mean and histogram).
# Repetitions alternate between the two programs, so load from other processes hits both.
set -euo pipefail
PY=${PYTHON:-/usr/bin/python3}
MPIEXEC=${MPIEXEC:-mpirun}
REPS=${REPS:-3}
THREADS=${THREADS:-1}
RANKS=${RANKS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-encode}
mkdir -p "$DIR"
echo "== build (cmake $HERE -> $DIR/build)"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 ||
  { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target ridge_bench >"$DIR/build.log" 2>&1 ||
  { tail -30 "$DIR/build.log"; exit 1; }
ROOT=()
[ "$(id -u)" = 0 ] && { ROOT=(--allow-run-as-root); export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; }

if [ "${1:-}" = "--full" ]; then
  shift
  N=${1:-9841}; V=${2:-39548}; D=${3:-512}; F=${4:-5}; A=${5:-20}; SEL=${6:-loo}
  export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
  echo "BLAS kernel: rdmlearn $(bench_kernel exe "$DIR/build/ridge_bench")"
  echo "== full subject: $RANKS ranks x 1 BLAS thread"
  /usr/bin/time -f "wall %e s, peak RSS of the largest process %M kB" \
    "$MPIEXEC" "${ROOT[@]}" --oversubscribe --bind-to none -n "$RANKS" \
    "$DIR/build/ridge_bench" full "$N" "$V" "$D" "$F" "$A" 2048 "$SEL"
  exit 0
fi

N=${1:-2000}; V=${2:-20000}; D=${3:-512}; A=${4:-20}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
bench_same_kernel sklearn "$(bench_kernel numpy)" rdmlearn "$(bench_kernel exe "$DIR/build/ridge_bench")"
echo "== data: $N images x $V targets x $D features, $A alphas; $THREADS BLAS thread(s) each"
"$PY" "$HERE/anchor.py" prepare "$DIR" "$N" "$V" "$D" "$A"
rm -f "$DIR/sklearn_times.txt" "$DIR/rdml_times.txt"
for rep in $(seq "$REPS"); do
  "$DIR/build/ridge_bench" anchor "$DIR" 1 | grep -v '^rdmlearn median'
  "$PY" "$HERE/anchor.py" fit "$DIR"
done
"$PY" "$HERE/anchor.py" report "$DIR"
