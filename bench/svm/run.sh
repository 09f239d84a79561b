#!/bin/bash
# SVM benchmark: rdmlearn's pair SVM against sklearn SVC(kernel='poly', degree=2, C=1) on the
# SAME planted data, pairs and image-disjoint split (bench/svm/anchor.py; paper's scale by
# default: 500 images, extremes K=50, 512-d). One thread each (OPENBLAS_NUM_THREADS=1), one
# OpenBLAS kernel for both (bench/common/blas_env.sh, BENCH_CORETYPE; printed).
# usage: bench/svm/run.sh [N K D]     env: RDML_BENCH_DIR (default /tmp/rdml-bench-svm)
# Prints fit and predict times of both, the fit speed-up, the dual objectives and the
# prediction agreement. sklearn takes about an hour at the default size (fit ~3,550 s and
# predict ~300 s measured on this kind of 2-core machine).
set -euo pipefail
N=${1:-500}; K=${2:-50}; D=${3:-512}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-svm}
mkdir -p "$DIR"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 || { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target svm_bench >"$DIR/build.log" 2>&1 || { tail -30 "$DIR/build.log"; exit 1; }
bench_same_kernel sklearn "$(bench_kernel numpy)" rdmlearn "$(bench_kernel exe "$DIR/build/svm_bench")"
$PY "$HERE/anchor.py" prepare "$DIR" "$N" "$K" "$D"
"$DIR/build/svm_bench" "$DIR"
$PY "$HERE/anchor.py" fit "$DIR"
