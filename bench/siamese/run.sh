#!/bin/bash
# Siamese benchmark: rdmlearn's pair network against the PyTorch anchor (torch_anchor.py, the
# paper authors' ContrastiveNetwork) on the SAME data, pairs and 80/20 pair split (bench_data.py
# builds them for both; anchor.py writes them for siamese_bench.c), all on THREADS threads and
# one OpenBLAS setting (bench/common/blas_env.sh: BENCH_CORETYPE). Two data sets:
#   planted  planted data (bench/common/planted.py: random unit-norm embeddings; nothing
#            generalises);
#   demo     a learnable problem: the demo's synthetic dataset (gabor embeddings of subject 1,
#            z-scored, and its V1 RDM; planted_demo.py), so that the test R^2 comparison means
#            something.
# Runs per data set: PyTorch with the seed's settings (batch 32, lr 0.01) and with a large
# batch (4096, lr 0.001); rdmlearn per pair at batch 32 (the seed's batching), decomposed with
# shuffled pairs at batch 4096, decomposed with block-of-images batches at the `rdmlearn
# train` defaults (batch 1024, lr 0.0005, one epoch of warm-up, blocks of ceil(sqrt(1024)) =
# 32 images) and at batch 4096, lr 0.001. RUNS (default 1) repeats every run and prints the
# medians of pairs/s and the ratios of the medians (test R^2 is deterministic).
# usage: bench/siamese/run.sh [N MAX_PAIRS SEED_EPOCHS BIG_EPOCHS]   (the planted set)
#        env: RDML_BENCH_DIR (default /tmp/rdml-bench-siamese), THREADS (default 2),
#             RDML_BENCH_H5 (the demo's results.h5; default build/demo/results.h5; the demo
#             set is skipped when it does not exist), DEMO_N (600), DEMO_MAXP (100000),
#             ONLY (planted or demo: run one set), RUNS (1), BENCH_CORETYPE
#             (bench/common/blas_env.sh)
set -euo pipefail
N=${1:-500}; MAXP=${2:-40000}; E1=${3:-2}; E2=${4:-10}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-siamese}
ANCHOR=$HERE/torch_anchor.py
DEMO_H5=${RDML_BENCH_H5:-$HERE/../../build/demo/results.h5}
unset RDML_BENCH_H5
export THREADS=${THREADS:-2}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
mkdir -p "$DIR"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 || { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target siamese_bench >"$DIR/build.log" 2>&1 || { tail -30 "$DIR/build.log"; exit 1; }
B="$DIR/build/siamese_bench"
bench_same_kernel torch "$(bench_kernel torch)" rdmlearn "$(bench_kernel exe "$B")"
pps() { sed -n 's/.*(\([0-9.]*\) s\/epoch, \([0-9]*\) pairs\/s).*/\2/p' <<<"$1"; }
r2() { sed -n 's/.*R2 train [-0-9.]* test \([-0-9.]*\).*/\1/p' <<<"$1"; }

med() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

one_set() { # name dir n maxp e1 e2 torch-command...
  local name=$1 d=$2 n=$3 mp=$4 e1=$5 e2=$6; shift 6
  echo "== $name: $n images, max $mp pairs, ${RUNS:-1} run(s)"
  $PY "$HERE/anchor.py" "$d" "$n" "$mp"
  local out r k t_seed t_big r_seed r_big r_blk r_blk4
  local -A pp
  for r in $(seq "${RUNS:-1}"); do
    t_seed=$("$@" "$n" "$e1" "$mp"); echo "$t_seed"
    t_big=$("$@" "$n" "$e2" "$mp" 4096 0.001); echo "$t_big"
    r_seed=$(RDML_BENCH_BIAS_INIT=1 "$B" "$d" "$e1" 32 0.01 perpair); echo "$r_seed"
    r_big=$(RDML_BENCH_BIAS_INIT=1 "$B" "$d" "$e2" 4096 0.001 decomposed); echo "$r_big"
    r_blk=$(RDML_BENCH_BIAS_INIT=1 "$B" "$d" "$e2" 1024 0.0005 blocks 0.5 1); echo "$r_blk"
    r_blk4=$(RDML_BENCH_BIAS_INIT=1 "$B" "$d" "$e2" 4096 0.001 blocks); echo "$r_blk4"
    for k in t_seed t_big r_seed r_big r_blk r_blk4; do pp[$k]+="$(pps "${!k}") "; done
  done
  for k in t_seed t_big r_seed r_big r_blk r_blk4; do pp[$k]=$(tr ' ' '\n' <<<"${pp[$k]}" | grep . | med); done
  local ts=${pp[t_seed]} tb=${pp[t_big]}
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", a / b}'; }
  echo "$name: median pairs/s over ${RUNS:-1} run(s): torch seed $ts, torch 4096 $tb, rdmlearn per pair 32 ${pp[r_seed]}, decomposed 4096 ${pp[r_big]}, blocks 1024 (train defaults) ${pp[r_blk]}, blocks 4096 ${pp[r_blk4]}"
  echo "$name: test R2  torch seed $(r2 "$t_seed"), torch 4096 $(r2 "$t_big"), rdmlearn per pair 32 $(r2 "$r_seed"), decomposed 4096 $(r2 "$r_big"), blocks 1024 (train defaults) $(r2 "$r_blk"), blocks 4096 $(r2 "$r_blk4")"
  echo "$name: speed-up per pair batch 32: $(ratio "${pp[r_seed]}" "$ts")x the torch seed run"
  echo "$name: speed-up decomposed 4096 (shuffled pairs): $(ratio "${pp[r_big]}" "$ts")x torch seed, $(ratio "${pp[r_big]}" "$tb")x torch 4096"
  echo "$name: speed-up blocks 1024 (train defaults): $(ratio "${pp[r_blk]}" "$ts")x torch seed, $(ratio "${pp[r_blk]}" "$tb")x torch 4096"
  echo "$name: speed-up blocks 4096: $(ratio "${pp[r_blk4]}" "$ts")x torch seed, $(ratio "${pp[r_blk4]}" "$tb")x torch 4096"
}

if [ "${ONLY:-planted}" = planted ] || [ -z "${ONLY:-}" ]; then
  one_set planted "$DIR/planted" "$N" "$MAXP" "$E1" "$E2" "$PY" "$ANCHOR"
fi
if [ "${ONLY:-demo}" = demo ] || [ -z "${ONLY:-}" ]; then
  if [ -f "$DEMO_H5" ]; then
    export RDML_BENCH_H5=$DEMO_H5
    one_set demo "$DIR/demo" "${DEMO_N:-600}" "${DEMO_MAXP:-100000}" "$E1" "$E2" "$PY" "$ANCHOR"
  else
    echo "demo set skipped: $DEMO_H5 does not exist (run bash tools/demo.sh first)"
  fi
fi
