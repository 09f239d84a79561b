#!/bin/bash
# RDM benchmark: rdmlearn (mpirun -n 2, one BLAS thread per rank) against the numpy float32
# BLAS anchor (anchor.py: 1 - Pearson through Z Z^T on standardised float32 rows, as a Python
# user computes an RDM; 2 BLAS threads) on the SAME matrix.
# usage: bench/rdm/run.sh [N V]        (default 2000 20000; the full subject is 9841 39548)
# env:   RDML_BENCH_DIR (work dir, default /tmp/rdml-bench), REPS (default 3),
#        ARITHS (the [rdm] arithmetic values rdmlearn runs with, default "float32 int16";
#        int16 is the VNNI integer engine, docs/rdm.md "Arithmetic"),
#        RANKS (default 2), MPIEXEC (default mpirun), PYTHON (default /usr/bin/python3),
#        BENCH_CORETYPE (the OpenBLAS kernel of BOTH programs: bench/common/blas_env.sh)
# Prints the kernel, the bare SGEMM peak of this run (rdm_bench measures it on all ranks at
# once, one BLAS thread each, before every repetition), and for each arithmetic: median times, the ratio numpy/rdmlearn
# (>= 1.0 means rdmlearn is at least as fast), useful GFLOP/s (N(N+1)V: the N(N+1)/2
# distinct Gram entries x 2V flops, = N^2 V to 0.05%) and their % of that peak, peak RSS per rank against its share of
# input + output, the HDF5 write time of the result, and the largest difference between the
# two RDMs. Both programs run in one BLAS environment (bench/common/blas_env.sh): the kernel
# each of them reports is printed, and the run stops when they differ.
set -euo pipefail
N=${1:-2000}
V=${2:-20000}
REPS=${REPS:-3}
RANKS=${RANKS:-2}
ARITHS=${ARITHS:-float32 int16}
PY=${PYTHON:-/usr/bin/python3}
MPIEXEC=${MPIEXEC:-mpirun}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench}
mkdir -p "$DIR"
X="$DIR/x_${N}x${V}.npy"

echo "== build (cmake $HERE -> $DIR/build)"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 ||
  { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target rdm_bench >"$DIR/build.log" 2>&1 ||
  { tail -30 "$DIR/build.log"; exit 1; }

if [ ! -f "$X" ]; then
  echo "== data: $X (default_rng(0).standard_normal((N, V), float32), as the anchor draws it)"
  "$PY" -c "import sys, numpy as np
n, v = int(sys.argv[1]), int(sys.argv[2])
X = np.random.default_rng(0).standard_normal((n, v), dtype=np.float32)
np.save(sys.argv[3], X)" "$N" "$V" "$X"
fi
bench_same_kernel numpy "$(bench_kernel numpy)" rdmlearn "$(bench_kernel exe "$DIR/build/rdm_bench")"

# both programs read the file from the page cache
cat "$X" >/dev/null

# Repetitions alternate between the two programs, so load from other processes on the
# machine hits both alike.
ROOT=()
[ "$(id -u)" = 0 ] && ROOT=(--allow-run-as-root)
: >"$DIR/numpy.log"
for a in $ARITHS; do : >"$DIR/rdml_$a.log"; done
for rep in $(seq 1 "$REPS"); do
  echo "== repetition $rep: numpy anchor (2 BLAS threads)"
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$PY" "$HERE/anchor.py" "$X" 1 "$DIR/r_numpy.npy" | tee -a "$DIR/numpy.log"
  for a in $ARITHS; do
    echo "== repetition $rep: rdmlearn, arithmetic $a ($RANKS ranks x 1 BLAS thread)"
    rm -f "$DIR/r_rdml_$a.h5"
    RDM_BENCH_ARITH=$a OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$MPIEXEC" "${ROOT[@]}" -n "$RANKS" \
      --bind-to none "$DIR/build/rdm_bench" "$X" "$DIR/r_rdml_$a.h5" 1 | tee -a "$DIR/rdml_$a.log"
  done
done

echo "== summary"
"$PY" - "$DIR" "$N" "$V" "$RANKS" $ARITHS <<'PYEOF'
import re, sys, statistics
import h5py, numpy as np
d, n, v, ranks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ariths = sys.argv[5:]
nlog = open(f"{d}/numpy.log").read()
tn = [float(m) for m in re.findall(r"z@z\.T n=\d+ v=\d+: ([0-9.]+) s", nlog)]
mn = statistics.median(tn)
tl = statistics.median(float(m) for m in re.findall(r"numpy load of \S+: ([0-9.]+) s", nlog))
kn = sorted(set(re.findall(r"numpy \S+ BLAS: kernel (\S+),", nlog)))
fl = float(n) * (n + 1) * v  # useful flops: N(N+1)/2 Gram entries x 2V (= N^2 V to 0.05%)
logs = {a: open(f"{d}/rdml_{a}.log").read() for a in ariths}
res = {}
for a, log in logs.items():
    for k, val in re.findall(r"RESULT (\S+) (.*)", log):
        res.setdefault(a, {}).setdefault(k, []).append(val)
peaks = [float(x) for a in ariths for x in res[a]["sgemm_peak_gflops"]]
peak = statistics.median(peaks)
print(f"kernel (both sides): {', '.join(kn)}")
print(f"bare SGEMM peak ({ranks} ranks x 1 thread, median of {len(peaks)}): {peak:.1f} GFLOP/s")
print(f"N={n} V={v}, useful flops N(N+1)V = {fl/1e9:.1f} GFLOP")
print(f"numpy median {mn:.3f} s: {fl/mn/1e9:.1f} GFLOP/s useful = {100*fl/mn/1e9/peak:.0f}% of peak")
b = np.load(f"{d}/r_numpy.npy")
np.fill_diagonal(b, 0)
bad = []
for a in ariths:
    r = res[a]
    tr = [float(m) for m in re.findall(r"rdmlearn rdm n=\d+ v=\d+ ranks=\d+: ([0-9.]+) s", logs[a])]
    mr = statistics.median(tr)
    tw = statistics.median(float(x) for x in r["h5_write_s"])
    print(f"-- rdmlearn, [rdm] arithmetic = {a} ({ranks} ranks) --")
    print(f"median {mr:.3f} s: {fl/mr/1e9:.1f} GFLOP/s useful = {100*fl/mr/1e9/peak:.0f}% of the SGEMM peak "
          f"(whole stage: reading the file, preparation, Gram, distances, mirror)")
    print(f"in CPU time (less disturbed by other processes): useful flops per CPU second of the ranks "
          f"= {statistics.median(float(x) for x in r['cpu_time_pct_of_peak']):.0f}% of the SGEMM's per CPU second (median)")
    print(f"ratio numpy/rdmlearn = {mn/mr:.2f}  (>= 1.0: rdmlearn faster; rdmlearn's time includes "
          f"reading the file, numpy's excludes np.load as the anchor does)")
    print(f"from the file: numpy np.load + compute {tl + mn:.3f} s, ratio {(tl + mn)/mr:.2f}")
    print(f"HDF5 write of the {n}x{n} result (median): {tw:.2f} s; compute + write {mr + tw:.1f} s")
    share = float(r["share_mb"][0])
    for k, vals in sorted(r.items()):
        if k.startswith("peak_rss"):
            print(f"{k}: {max(vals, key=lambda x: float(x.split()[0]))} MB  (share of input + output {share:.0f} MB; target <= 1.3 x)")
    print(f"plan (rdml_rdm_plan_bytes): {r['plan_mb'][0]} MB per rank")
    with h5py.File(f"{d}/r_rdml_{a}.h5", "r") as h:
        x = h["/rdm"][...]
    print(f"max |rdmlearn - numpy| = {np.abs(x - b).max():.2e}; symmetric: {bool((x == x.T).all())}")
    kr = sorted(set(re.findall(r"rdmlearn BLAS: kernel (\S+),", logs[a])))
    print(f"OpenBLAS kernel as each program reported it: numpy {', '.join(kn)}; rdmlearn {', '.join(kr)}")
    if not (kn == kr and len(kn) == 1):
        bad.append(a)
if "int16" in ariths and not any(k in ("SkylakeX", "Cooperlake", "SapphireRapids") for k in kn):
    print(f"note: the int16 engine runs AVX-512 VNNI whatever OpenBLAS's kernel; numpy ran the "
          f"{', '.join(kn)} kernel here. For a like-for-like int16 ratio give numpy its AVX-512 "
          f"kernel too: BENCH_CORETYPE=auto.")
assert not bad, f"the programs ran different BLAS kernels ({bad})"
PYEOF
