#!/bin/bash
# CLIP ViT-B/32 throughput: rdmlearn's C forward (bench/embed/embed_bench.c: rdml_clip_forward,
# 1 process x 2 OpenBLAS threads) against PyTorch CPU (bench/embed/anchor.py: OpenAI's
# VisionTransformer class as tools/clip_reference.py copies it, timed as a Python user would,
# torch.set_num_threads(2))
# on the SAME random weights (generator rdml-vitgen-1 of tools/clip_reference.py, written once
# as an F32 safetensors file in Hugging Face naming, read by both) and the SAME batch of 32
# preprocessed images (synthetic 256x256 PNGs through tools/clip_reference.py's
# CLIPImageProcessor; preprocessing is not timed on either side).
# usage: bench/embed/run.sh [BATCH=32]
# env:   RDML_BENCH_DIR (work dir, default /tmp/rdml-bench-embed), REPS (alternating
#        repetitions, default 5), INNER (timed batches per repetition, default 3),
#        THREADS (default 2), PYTHON (default /usr/bin/python3), BENCH_CORETYPE
# Each repetition runs: the SGEMM peak microbenchmark (embed_bench peak, same threads), the
# PyTorch anchor, rdmlearn, and (THREADS=2) rdmlearn as `mpirun -n 2 rdmlearn embed` runs it:
# two processes x 1 thread, each a batch of B (total images/s). The programs alternate so
# load from other processes on the machine hits both alike. Prints the medians (and min-max) of images/s, the ratio
# rdmlearn / PyTorch (>= 1.0 wanted), GFLOP/s of rdmlearn (8.82 GFLOP per image, counted
# below from the architecture) against the best SGEMM rate measured, rdmlearn's time per
# phase, the largest difference between the two programs' features, and, once, PyTorch with
# its own random initialisation and input (vit_random.py) for reference. Both sides run one
# OpenBLAS kernel (bench/common/blas_env.sh, BENCH_CORETYPE; printed).
set -euo pipefail
B=${1:-32}
REPS=${REPS:-5}
INNER=${INNER:-3}
THREADS=${THREADS:-2}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-embed}
mkdir -p "$DIR"
WTS="$DIR/vitb32_seed20260101.safetensors"
PIX="$DIR/pixels_b$B.npy"

echo "== build (cmake $HERE -> $DIR/build, RelWithDebInfo = the default build's -O2)"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$DIR/cmake.log" 2>&1 ||
  { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target embed_bench >"$DIR/build.log" 2>&1 ||
  { tail -30 "$DIR/build.log"; exit 1; }

if [ ! -f "$WTS" ]; then
  echo "== weights: $WTS (rdml-vitgen-1, seed 20260101, the test fixture's model)"
  "$PY" - "$SRC/tools" "$WTS" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import clip_reference as cr
sd, cs = cr.vitgen(20260101)
cr.save_safetensors(sys.argv[2], sd, {"format": "pt", "made_by": "rdml-vitgen-1 seed 20260101"})
print(f"checksum {cs:016x}")
PYEOF
fi
if [ ! -f "$PIX" ]; then
  echo "== images: $B synthetic 256x256 RGB PNGs -> CLIPImageProcessor -> $PIX"
  "$PY" - "$SRC/tools" "$DIR" "$B" "$PIX" <<'PYEOF'
import sys, os
import numpy as np
from PIL import Image
sys.path.insert(0, sys.argv[1])
import clip_reference as cr
d, B, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
rs = np.random.RandomState(5)
yy, xx = np.mgrid[0:256, 0:256].astype(np.float64)
px = []
for i in range(B):
    img = np.zeros((256, 256, 3))
    for c in range(3):
        f, th = rs.uniform(0.02, 0.3), rs.uniform(0, np.pi)
        img[..., c] = 128 + 80 * np.sin(f * (xx * np.cos(th) + yy * np.sin(th))) + 25 * rs.randn(256, 256)
    im = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
    im.save(os.path.join(d, f"img{i:03d}.png"))
    px.append(cr.preprocess(Image.open(os.path.join(d, f"img{i:03d}.png")), 224)[0].ravel())
np.save(out, np.array(px, np.float32))
PYEOF
fi
bench_same_kernel torch "$(bench_kernel torch)" rdmlearn "$(bench_kernel exe "$DIR/build/embed_bench")"
cat "$WTS" "$PIX" >/dev/null # page cache

: >"$DIR/peak.log"
: >"$DIR/torch.log"
: >"$DIR/rdml.log"
: >"$DIR/rdml2.log"
for rep in $(seq 1 "$REPS"); do
  echo "== repetition $rep/$REPS: SGEMM peak ($THREADS OpenBLAS threads)"
  OPENBLAS_NUM_THREADS=$THREADS "$DIR/build/embed_bench" peak 5 | tee -a "$DIR/peak.log"
  echo "== repetition $rep/$REPS: PyTorch (torch.set_num_threads($THREADS)), batch $B x $INNER"
  OMP_NUM_THREADS=$THREADS "$PY" "$HERE/anchor.py" "$WTS" "$PIX" "$INNER" "$DIR/f_torch.npy" \
    "$THREADS" | tee -a "$DIR/torch.log"
  echo "== repetition $rep/$REPS: rdmlearn (1 process x $THREADS OpenBLAS threads), batch $B x $INNER"
  OPENBLAS_NUM_THREADS=$THREADS "$DIR/build/embed_bench" forward "$WTS" "$PIX" "$INNER" \
    "$DIR/f_rdml.npy" | tee -a "$DIR/rdml.log"
  if [ "$THREADS" = 2 ]; then
    echo "== repetition $rep/$REPS: rdmlearn as \`mpirun -n 2 rdmlearn embed\` runs it: 2 processes x 1 thread, batch $B x $INNER each"
    for p in 0 1; do
      OPENBLAS_NUM_THREADS=1 "$DIR/build/embed_bench" forward "$WTS" "$PIX" "$INNER" \
        "$DIR/f_rdml2_$p.npy" >"$DIR/rdml2_$p.log" &
    done
    wait
    for p in 0 1; do grep "^rdml batch" "$DIR/rdml2_$p.log" | sed "s/^/proc $p /"; done | tee -a "$DIR/rdml2.log"
  fi
done
echo "== PyTorch with its own random initialisation and input (vit_random.py), for reference"
"$PY" "$HERE/vit_random.py" "$B" "$INNER" "$THREADS" |
  tee "$DIR/vit_random.log"

echo "== summary"
"$PY" - "$DIR" "$B" "$THREADS" <<'PYEOF'
import re, sys, statistics as st
import numpy as np
d, B, thr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rates(f, who):
    return [float(x) for x in re.findall(who + r" batch=\d+ seconds=\S+ images/s=([0-9.]+)", open(f).read())]
rt, rr = rates(f"{d}/torch.log", "torch"), rates(f"{d}/rdml.log", "rdml")
# FLOPs of one ViT-B/32 image (2 per multiply-add), counted from the architecture
D, M, L, T, P, g, p = 768, 3072, 12, 50, 512, 7, 32
fl = 2 * g * g * D * 3 * p * p + L * (2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D + 2 * 2 * T * D * M) + 2 * D * P
peaks = [float(x) for x in re.findall(r"sgemm 1600x3072x768 \(NT\): .* = ([0-9.]+) GFLOP/s", open(f"{d}/peak.log").read())]
sq = [float(x) for x in re.findall(r"sgemm 2048x2048x2048 \(NT\): .* = ([0-9.]+) GFLOP/s", open(f"{d}/peak.log").read())]
mt, mr = st.median(rt), st.median(rr)
print(f"ViT-B/32, batch {B}, {thr} threads; {fl / 1e9:.3f} GFLOP per image")
print(f"PyTorch : median {mt:.2f} images/s over {len(rt)} batches (min {min(rt):.2f}, max {max(rt):.2f}) = {mt * fl / 1e9:.1f} GFLOP/s")
print(f"rdmlearn: median {mr:.2f} images/s over {len(rr)} batches (min {min(rr):.2f}, max {max(rr):.2f}) = {mr * fl / 1e9:.1f} GFLOP/s")
print(f"ratio rdmlearn / PyTorch = {mr / mt:.2f} (median of each; >= 1.0 wanted)")
try:
    two = open(f"{d}/rdml2.log").read()
    p0 = [float(x) for x in re.findall(r"proc 0 rdml batch=\d+ seconds=\S+ images/s=([0-9.]+)", two)]
    p1 = [float(x) for x in re.findall(r"proc 1 rdml batch=\d+ seconds=\S+ images/s=([0-9.]+)", two)]
    agg = [a + b for a, b in zip(p0, p1)]
    m2 = st.median(agg)
    print(f"rdmlearn 2 processes x 1 thread (mpirun -n 2 rdmlearn embed): median {m2:.2f} images/s in total "
          f"(min {min(agg):.2f}, max {max(agg):.2f}) = {m2 * fl / 1e9:.1f} GFLOP/s; ratio to PyTorch {m2 / mt:.2f}")
except (FileNotFoundError, ValueError, st.StatisticsError):
    pass
allpk = [float(x) for x in re.findall(r"sgemm \S+ \(NT\): .* = ([0-9.]+) GFLOP/s", open(f"{d}/peak.log").read())]
pk = max(allpk)
print(f"SGEMM peak ({thr} threads, OpenBLAS, best of 5 calls per run): fc1 shape 1600x3072x768 median {st.median(peaks):.1f} "
      f"(max {max(peaks):.1f}), 2048^3 median {st.median(sq):.1f} (max {max(sq):.1f}) GFLOP/s")
print(f"rdmlearn (median) reaches {mr * fl / 1e9 / pk * 100:.0f}% of the best SGEMM call of the run ({pk:.1f} GFLOP/s), "
      f"{mr * fl / 1e9 / st.median(peaks) * 100:.0f}% of the median fc1-shape rate")
# repetition by repetition (the programs of one repetition ran back to back, under about
# the same load): ratio of the medians, and rdmlearn's GFLOP/s over that repetition's best
# SGEMM call
n = len(rr) // len(peaks) if peaks else 0
if n and len(rt) == n * len(peaks) and len(allpk) == 4 * len(peaks):
    rat, eff = [], []
    for r in range(len(peaks)):
        mr_r, mt_r = st.median(rr[r * n:(r + 1) * n]), st.median(rt[r * n:(r + 1) * n])
        rat.append(mr_r / mt_r)
        eff.append(mr_r * fl / 1e9 / max(allpk[4 * r:4 * r + 4]))
    print("per repetition: ratio " + ", ".join(f"{x:.2f}" for x in rat) +
          "; rdmlearn / best SGEMM of the repetition " + ", ".join(f"{x * 100:.0f}%" for x in eff) +
          f" (median {st.median(eff) * 100:.0f}%)")
ph = re.findall(r"rdml phases of the last repetition: (.*)", open(f"{d}/rdml.log").read())
if ph:
    acc = {}
    for line in ph:
        for name, v in re.findall(r"(\w+) ([0-9.]+) s", line):
            acc.setdefault(name, []).append(float(v))
    tot = sum(st.median(v) for v in acc.values())
    print("rdmlearn phases (median over repetitions, s per batch): " +
          ", ".join(f"{k} {st.median(v):.3f} ({st.median(v) / tot * 100:.0f}%)" for k, v in acc.items()))
a, b = np.load(f"{d}/f_rdml.npy").astype(np.float64), np.load(f"{d}/f_torch.npy").astype(np.float64)
print(f"features: max |rdmlearn - torch| / max |torch| per image, worst = "
      f"{(np.abs(a - b).max(1) / np.abs(b).max(1)).max():.2e}")
PYEOF
