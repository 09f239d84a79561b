#!/bin/bash
# Scalable pair SVM benchmark: svm.solver = lowrank at several ranks against exact SMO and
# scikit-learn's LinearSVC (on the same explicit rank-K features) on the SAME pairs and
# image-disjoint holdout, built from a results file's RDM and embeddings (subject 1; e.g. a
# `rdmlearn synth` subject after `rdmlearn rdm` and `rdmlearn embed --set embed.backend=gabor`).
# One thread each (OPENBLAS_NUM_THREADS=1), one OpenBLAS kernel for both (printed).
# usage: bench/svm/scale.sh RESULTS.h5 [SELECTION EMBEDDING K TEST_SIZE]
#   env: RANKS ("10 25 50 100 200"), REPEATS (3), SMO_MAX (max training pairs for exact SMO,
#        150000), LINEAR_RANK (50; 0: no sklearn), LINEAR_MAX_GB (6), SVC=1 (also sklearn
#        SVC, slow: ~400 s at 20,000 pairs), RDML_BENCH_DIR (/tmp/rdml-bench-svm-scale)
# Prints per solver the median fit and predict time, test accuracy and peak RSS over REPEATS,
# and fit speed and accuracy against exact SMO.
set -euo pipefail
H5=${1:?usage: scale.sh RESULTS.h5 [SELECTION EMBEDDING K TEST_SIZE]}
SEL=${2:-all}; EMB=${3:-gabor}; K=${4:-50}; TS=${5:-0.36}
RANKS=${RANKS:-10 25 50 100 200}; REPEATS=${REPEATS:-3}; SMO_MAX=${SMO_MAX:-150000}
LINEAR_RANK=${LINEAR_RANK:-50}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-svm-scale}
mkdir -p "$DIR"; rm -f "$DIR/runs.tsv"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 || { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target svm_bench >"$DIR/build.log" 2>&1 || { tail -30 "$DIR/build.log"; exit 1; }
bench_same_kernel sklearn "$(bench_kernel numpy)" rdmlearn "$(bench_kernel exe "$DIR/build/svm_bench")"
$PY "$HERE/anchor.py" prepare-h5 "$DIR" "$H5" "$SEL" "$EMB" "$K" "$TS"
NTR=$($PY -c "import numpy as np; print(len(np.load('$DIR/train_ij.npy')))")
echo "== machine load: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: timings are noisy, medians of $REPEATS)"
for r in $(seq "$REPEATS"); do
  if [ "$NTR" -le "$SMO_MAX" ]; then "$DIR/build/svm_bench" "$DIR" 200 smo; fi
  for rk in $RANKS; do "$DIR/build/svm_bench" "$DIR" 200 lowrank "$rk"; done
  if [ "$r" = 1 ] && [ "$LINEAR_RANK" -gt 0 ]; then $PY "$HERE/anchor.py" linear "$DIR" "$LINEAR_RANK"; fi
done
[ "$NTR" -le "$SMO_MAX" ] || echo "exact SMO: not run ($NTR training pairs > SMO_MAX=$SMO_MAX)"
if [ "${SVC:-0}" = 1 ]; then $PY "$HERE/anchor.py" fit "$DIR"; fi
echo "== summary (medians; machine load now: $(cut -d' ' -f1-3 /proc/loadavg))"
$PY "$HERE/anchor.py" summary "$DIR"
