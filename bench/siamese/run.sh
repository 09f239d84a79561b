#!/bin/bash
# Siamese benchmark: rdmlearn's pair network against the PyTorch anchor
# (../shared/bench/siamese_torch.py, the paper authors' ContrastiveNetwork) on the SAME planted
# data, pairs and 80/20 pair split (anchor.py writes them as siamese_torch.py builds them),
# both on 2 threads. Runs: the seed's settings (batch 32, lr 0.01) in both; a large-batch
# PyTorch run (4096, lr 0.001); rdmlearn per pair at batch 32 and decomposed at large batch.
# usage: bench/siamese/run.sh [N MAX_PAIRS SEED_EPOCHS BIG_EPOCHS]
#        env: RDML_BENCH_DIR (default /tmp/rdml-bench-siamese), THREADS (default 2)
set -euo pipefail
N=${1:-500}; MAXP=${2:-40000}; E1=${3:-2}; E2=${4:-10}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-siamese}
ANCHOR=${RDML_SHARED_BENCH:-$HERE/../../../shared/bench}/siamese_torch.py
export THREADS=${THREADS:-2}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
mkdir -p "$DIR"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 || { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target siamese_bench >"$DIR/build.log" 2>&1 || { tail -30 "$DIR/build.log"; exit 1; }
$PY "$HERE/anchor.py" "$DIR" "$N" "$MAXP"
B="$DIR/build/siamese_bench"
t_seed=$($PY "$ANCHOR" "$N" "$E1" "$MAXP"); echo "$t_seed"
t_big=$($PY "$ANCHOR" "$N" "$E2" "$MAXP" 4096 0.001); echo "$t_big"
r_seed=$(RDML_BENCH_BIAS_INIT=1 "$B" "$DIR" "$E1" 32 0.01 perpair); echo "$r_seed"
r_big=$(RDML_BENCH_BIAS_INIT=1 "$B" "$DIR" "$E2" 4096 0.001 decomposed); echo "$r_big"
pps() { sed -n 's/.*(\([0-9.]*\) s\/epoch, \([0-9]*\) pairs\/s).*/\2/p' <<<"$1"; }
echo "speed-up, seed settings (per pair, batch 32):   $(( $(pps "$r_seed") / $(pps "$t_seed") ))x the PyTorch seed run"
echo "speed-up, rdmlearn decomposed batch 4096:      $(( $(pps "$r_big") / $(pps "$t_seed") ))x the PyTorch seed run, $(( $(pps "$r_big") / $(pps "$t_big") ))x PyTorch batch 4096"
