#!/bin/bash
# Statistics benchmark: rdml_stats_evaluate (stats_bench.c, mpirun -n 2) against the same
# procedure in numpy (anchor.py) on the same data and the same resampling indices: one
# subject's 1,000-image RDM (499,500 pairs) and 3 model RDMs (data.py), Spearman, 1,000
# bootstrap samples over images (rsatoolbox's self-pair removal) and 10,000 permutations,
# with intervals, permutation p-values and rsatoolbox's bootstrap pair tests.
# usage: bench/evaluate/run.sh [N NBOOT NPERM]        (default 1000 1000 10000)
# env:   RDML_BENCH_DIR (default /tmp/rdml-bench-eval), REPS (rdmlearn repetitions, default 3),
#        RANKS (default 2), MPIEXEC (default mpirun), PYTHON (default /usr/bin/python3),
#        ANCHOR_BOOT / ANCHOR_PERM (samples / permutations the anchor runs, default 100 /
#        1000: numpy needs minutes for the full counts, so its time is scaled linearly to
#        them and printed as such; set them to NBOOT / NPERM for a full anchor run),
#        BENCH_CORETYPE (OpenBLAS kernel of both programs: bench/common/blas_env.sh)
# Prints the kernels, rdmlearn's median, numpy's time, the ratio numpy / rdmlearn, and the
# largest difference between the two programs' bootstrap and null scores.
set -euo pipefail
N=${1:-1000}
NBOOT=${2:-1000}
NPERM=${3:-10000}
REPS=${REPS:-3}
RANKS=${RANKS:-2}
PY=${PYTHON:-/usr/bin/python3}
MPIEXEC=${MPIEXEC:-mpirun}
ANCHOR_BOOT=${ANCHOR_BOOT:-100}
ANCHOR_PERM=${ANCHOR_PERM:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-eval}
D="$DIR/data_$N"
mkdir -p "$D"

echo "== build (cmake $HERE -> $DIR/build)"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 ||
  { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target stats_bench >"$DIR/build.log" 2>&1 ||
  { tail -30 "$DIR/build.log"; exit 1; }
[ -f "$D/brain.npy" ] || "$PY" "$HERE/data.py" "$D" "$N" 3
bench_same_kernel numpy "$(bench_kernel numpy)" rdmlearn "$(bench_kernel exe "$DIR/build/stats_bench")"

ROOT=()
[ "$(id -u)" = 0 ] && ROOT=(--allow-run-as-root)
echo "== rdmlearn: $RANKS ranks x 1 thread, $REPS repetitions (first writes the indices, untimed)"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$MPIEXEC" "${ROOT[@]}" -n "$RANKS" --bind-to none \
  "$DIR/build/stats_bench" "$D" spearman "$NBOOT" "$NPERM" "$REPS" write-indices | tee "$DIR/rdml.log"
echo "== numpy anchor (2 BLAS threads): $ANCHOR_BOOT samples, $ANCHOR_PERM permutations"
OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$PY" "$HERE/anchor.py" "$D" "$ANCHOR_BOOT" "$ANCHOR_PERM" | tee "$DIR/numpy.log"

echo "== summary"
"$PY" - "$DIR" "$RANKS" <<'PYEOF'
import re, sys
d, ranks = sys.argv[1], sys.argv[2]
log, nlog = open(f"{d}/rdml.log").read(), open(f"{d}/numpy.log").read()
tr = float(re.search(r"RESULT median_s ([0-9.]+)", log).group(1))
m = re.search(r"numpy stats n=(\d+) boot=(\d+) perm=(\d+): ([0-9.]+) s(.*)", nlog)
tn = float(m.group(4))
print(f"n={m.group(1)} boot={m.group(2)} perm={m.group(3)}: rdmlearn {ranks} ranks median {tr:.2f} s, "
      f"numpy {tn:.1f} s{m.group(5)}")
print(f"ratio numpy/rdmlearn = {tn / tr:.1f}  (>= 1.0 means rdmlearn is faster)")
print(re.search(r"max \|rdmlearn - numpy\|.*", nlog).group(0))
kn = re.findall(r"numpy \S+ BLAS: kernel (\S+),", nlog)
kr = re.findall(r"rdmlearn BLAS: kernel (\S+),", log)
print(f"OpenBLAS kernel as each program reported it: numpy {kn[0]}; rdmlearn {kr[0]}")
assert kn[0] == kr[0], "the two programs ran different BLAS kernels"
PYEOF
