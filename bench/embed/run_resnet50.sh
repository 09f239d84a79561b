#!/bin/bash
# ResNet-50 throughput (issue 17): rdmlearn's C forward (bench/embed/embed_bench.c convnet:
# rdml_convnet_forward, channels-last SGEMMs on OpenBLAS, batch norm folded) against PyTorch
# CPU (bench/embed/resnet_anchor.py: torchvision.models.resnet50 in eval mode, no_grad), on
# the SAME random weights (tools/make_zoo_fixtures.py, seed 0: .safetensors for rdmlearn, the
# .pth for torch) and the SAME batch of preprocessed images (synthetic PNGs through
# torchvision's ImageNet transform; preprocessing is not timed), the same threads.
# PyTorch runs twice: as installed (convolutions in oneDNN, which has its own kernels and does
# not use OpenBLAS) and with oneDNN off (MKLDNN=0: PyTorch's im2col + BLAS convolutions).
# usage: bench/embed/run_resnet50.sh [BATCH=32]
# env:   RDML_BENCH_DIR (default /tmp/rdml-bench-resnet50), REPS (alternating repetitions,
#        default 3), INNER (timed batches per repetition, default 3), THREADS (default 2),
#        ARCH (default resnet50), PYTHON (default /usr/bin/python3), BENCH_CORETYPE
# Prints the medians (min-max) of images/s, the ratios rdmlearn / PyTorch (>= 1.0 wanted) and
# the largest difference between the two programs' outputs.
set -euo pipefail
B=${1:-32}
REPS=${REPS:-3}
INNER=${INNER:-3}
THREADS=${THREADS:-2}
ARCH=${ARCH:-resnet50}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-resnet50}
mkdir -p "$DIR/img"
PIX="$DIR/pixels_b$B.npy"

echo "== build (cmake $HERE -> $DIR/build, RelWithDebInfo = the default build's -O2)"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$DIR/cmake.log" 2>&1 ||
  { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target embed_bench >"$DIR/build.log" 2>&1 ||
  { tail -30 "$DIR/build.log"; exit 1; }

if [ ! -f "$PIX" ] || [ ! -f "$DIR/fx/$ARCH.pth" ]; then
  echo "== $B synthetic PNGs, $ARCH random weights (seed 0) and the preprocessed batch"
  "$PY" - "$DIR/img" "$B" <<'PYEOF'
import sys, numpy as np
from PIL import Image
d, B = sys.argv[1], int(sys.argv[2])
rs = np.random.RandomState(5)
for i in range(B):
    w, h = 320 + 8 * (i % 5), 256 + 6 * (i % 7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 80 * np.sin(rs.uniform(0.02, 0.3) * (xx + yy)) + 25 * rs.randn(h, w)
                    for _ in range(3)], -1)
    Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(f"{d}/img{i:03d}.png")
PYEOF
  "$PY" "$SRC/tools/make_zoo_fixtures.py" "$DIR/fx" "$ARCH" fc "$DIR"/img/img*.png --pth
  "$PY" -c "import numpy as np, sys; x = np.load(sys.argv[1]); np.save(sys.argv[2], x.reshape(x.shape[0], -1))" \
    "$DIR/fx/$ARCH.input.npy" "$PIX"
fi
bench_same_kernel torch "$(bench_kernel torch)" rdmlearn "$(bench_kernel exe "$DIR/build/embed_bench")"
cat "$DIR/fx/$ARCH.safetensors" "$DIR/fx/$ARCH.pth" "$PIX" >/dev/null # page cache

: >"$DIR/torch.log"
: >"$DIR/rdml.log"
echo "== load: $(uptime)"
for rep in $(seq 1 "$REPS"); do
  echo "== repetition $rep/$REPS: PyTorch (torch.set_num_threads($THREADS), oneDNN on), batch $B x $INNER"
  OMP_NUM_THREADS=$THREADS "$PY" "$HERE/resnet_anchor.py" "$ARCH" "$DIR/fx/$ARCH.pth" "$PIX" "$INNER" \
    "$DIR/f_torch.npy" "$THREADS" | tee -a "$DIR/torch.log"
  echo "== repetition $rep/$REPS: PyTorch with oneDNN off (im2col + BLAS), batch $B x $INNER"
  MKLDNN=0 OMP_NUM_THREADS=$THREADS "$PY" "$HERE/resnet_anchor.py" "$ARCH" "$DIR/fx/$ARCH.pth" "$PIX" "$INNER" \
    "$DIR/f_torch2.npy" "$THREADS" | tee -a "$DIR/torch.log"
  echo "== repetition $rep/$REPS: rdmlearn (1 process x $THREADS OpenBLAS threads), batch $B x $INNER"
  OPENBLAS_NUM_THREADS=$THREADS "$DIR/build/embed_bench" convnet "$ARCH" "$DIR/fx/$ARCH.safetensors" "$PIX" "$INNER" \
    "$DIR/f_rdml.npy" | tee -a "$DIR/rdml.log"
done
echo "== load: $(uptime)"
echo "== summary"
"$PY" - "$DIR" "$B" "$THREADS" "$ARCH" <<'PYEOF'
import re, sys, statistics as st
import numpy as np
d, B, thr, arch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rates(f, who):
    return [float(x) for x in re.findall(r"^" + who + r" batch=\d+ seconds=\S+ images/s=([0-9.]+)", open(f).read(), re.M)]
rt, rt2, rr = rates(f"{d}/torch.log", "torch"), rates(f"{d}/torch.log", "torch_nomkldnn"), rates(f"{d}/rdml.log", "rdml")
mt, mt2, mr = st.median(rt), st.median(rt2), st.median(rr)
print(f"{arch}, batch {B}, {thr} threads (machine shared with other jobs: see the load lines)")
print(f"PyTorch (oneDNN)    : median {mt:.2f} images/s over {len(rt)} batches (min {min(rt):.2f}, max {max(rt):.2f})")
print(f"PyTorch (im2col+BLAS): median {mt2:.2f} images/s over {len(rt2)} batches (min {min(rt2):.2f}, max {max(rt2):.2f})")
print(f"rdmlearn            : median {mr:.2f} images/s over {len(rr)} batches (min {min(rr):.2f}, max {max(rr):.2f})")
print(f"ratio rdmlearn / PyTorch (oneDNN) = {mr / mt:.2f}; rdmlearn / PyTorch (BLAS) = {mr / mt2:.2f} (medians; >= 1.0 wanted)")
a, b = np.load(f"{d}/f_rdml.npy").astype(np.float64), np.load(f"{d}/f_torch.npy").astype(np.float64)
print(f"outputs: max |rdmlearn - torch| / max |torch| = {np.abs(a - b).max() / np.abs(b).max():.2e}")
PYEOF
