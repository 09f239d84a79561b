#!/bin/bash
# ViT throughput (issue 17): DINOv2-B/14 and CLIP ViT-B/16, rdmlearn's C forward
# (bench/embed/embed_bench.c: `convnet dinov2` = rdml_convnet_forward -> vit.c up to the final
# norm; `forward` = rdml_clip_forward, get_image_features) against PyTorch CPU
# (bench/embed/vit_anchor.py: tools/vit_reference.py's DINOv2 port; bench/embed/anchor.py:
# OpenAI's VisionTransformer), on the SAME random weights (DINOv2: tools/vit_reference.py
# seed 0, B/14 with the released 37 x 37 position table, .safetensors for rdmlearn, .pth for
# torch; CLIP: tools/clip_reference.py's generator with patch 16, one safetensors file read
# by both) and the SAME batch of preprocessed images (synthetic PNGs through each model's
# transform; preprocessing is not timed), the same threads, one OpenBLAS kernel.
# usage: bench/embed/run_vit.sh [BATCH=32]
# env:   RDML_BENCH_DIR (default /tmp/rdml-bench-vit), REPS (alternating repetitions,
#        default 3), INNER (timed batches per repetition, default 2), THREADS (default 2),
#        PYTHON (default /usr/bin/python3), BENCH_CORETYPE
# Prints the medians (min-max) of images/s, the ratios rdmlearn / PyTorch (>= 1.2 wanted)
# and the largest difference between the two programs' outputs.
set -euo pipefail
B=${1:-32}
REPS=${REPS:-3}
INNER=${INNER:-2}
THREADS=${THREADS:-2}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
. "$HERE/../common/blas_env.sh"
DIR=${RDML_BENCH_DIR:-/tmp/rdml-bench-vit}
mkdir -p "$DIR/img"
PD="$DIR/pixels_dino_b$B.npy"
PC="$DIR/pixels_clip_b$B.npy"
WC="$DIR/clip_b16.safetensors"

echo "== build (cmake $HERE -> $DIR/build, RelWithDebInfo = the default build's -O2)"
cmake -S "$HERE" -B "$DIR/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$DIR/cmake.log" 2>&1 ||
  { cat "$DIR/cmake.log"; exit 1; }
cmake --build "$DIR/build" -j2 --target embed_bench >"$DIR/build.log" 2>&1 ||
  { tail -30 "$DIR/build.log"; exit 1; }

if [ ! -f "$PD" ] || [ ! -f "$PC" ] || [ ! -f "$WC" ] || [ ! -f "$DIR/fx/dinov2.pth" ]; then
  echo "== $B synthetic PNGs, random weights, the preprocessed batches"
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
  "$PY" "$SRC/tools/vit_reference.py" "$DIR/fx" dinov2 norm "$DIR"/img/img*.png --pth
  "$PY" -c "import numpy as np, sys; x = np.load(sys.argv[1]); np.save(sys.argv[2], x.reshape(x.shape[0], -1))" \
    "$DIR/fx/dinov2.input.npy" "$PD"
  "$PY" - "$SRC/tools" "$WC" "$PC" "$DIR"/img/img*.png <<'PYEOF'
import sys
import numpy as np
from PIL import Image
sys.path.insert(0, sys.argv[1])
import clip_reference as cr
sd, cs = cr.vitgen(20260101, patch=16)
cr.save_safetensors(sys.argv[2], sd, {"format": "pt", "made_by": "rdml-vitgen-1 seed 20260101 patch 16"})
np.save(sys.argv[3], np.array([cr.preprocess(Image.open(p), 224)[0].ravel() for p in sys.argv[4:]], np.float32))
PYEOF
fi
bench_same_kernel torch "$(bench_kernel torch)" rdmlearn "$(bench_kernel exe "$DIR/build/embed_bench")"
cat "$DIR/fx/dinov2.safetensors" "$DIR/fx/dinov2.pth" "$WC" "$PD" "$PC" >/dev/null # page cache

: >"$DIR/torch.log"
: >"$DIR/rdml.log"
echo "== load: $(uptime)"
for rep in $(seq 1 "$REPS"); do
  echo "== repetition $rep/$REPS (batch $B x $INNER, $THREADS threads): DINOv2-B/14 PyTorch, rdmlearn; CLIP ViT-B/16 PyTorch, rdmlearn"
  OMP_NUM_THREADS=$THREADS "$PY" "$HERE/vit_anchor.py" "$DIR/fx/dinov2.pth" "$PD" "$INNER" "$DIR/fd_torch.npy" "$THREADS" | tee -a "$DIR/torch.log"
  OPENBLAS_NUM_THREADS=$THREADS "$DIR/build/embed_bench" convnet dinov2 "$DIR/fx/dinov2.safetensors" "$PD" "$INNER" \
    "$DIR/fd_rdml.npy" | sed 's/^rdml /rdml_dinov2 /' | tee -a "$DIR/rdml.log"
  OMP_NUM_THREADS=$THREADS "$PY" "$HERE/anchor.py" "$WC" "$PC" "$INNER" "$DIR/fc_torch.npy" "$THREADS" | sed 's/^torch /torch_clip /' | tee -a "$DIR/torch.log"
  OPENBLAS_NUM_THREADS=$THREADS "$DIR/build/embed_bench" forward "$WC" "$PC" "$INNER" "$DIR/fc_rdml.npy" | sed 's/^rdml /rdml_clip /' | tee -a "$DIR/rdml.log"
done
echo "== load: $(uptime)"
echo "== summary"
"$PY" - "$DIR" "$B" "$THREADS" <<'PYEOF'
import re, sys, statistics as st
import numpy as np
d, B, thr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rates(f, who):
    return [float(x) for x in re.findall(r"^" + who + r" batch=\d+ seconds=\S+ images/s=([0-9.]+)", open(f).read(), re.M)]
print(f"batch {B}, {thr} threads (machine shared with other jobs: see the load lines)")
for name, tag, ft, fr in [("DINOv2-B/14", "dinov2", "fd_torch", "fd_rdml"), ("CLIP ViT-B/16", "clip", "fc_torch", "fc_rdml")]:
    rt, rr = rates(f"{d}/torch.log", f"torch_{tag}"), rates(f"{d}/rdml.log", f"rdml_{tag}")
    mt, mr = st.median(rt), st.median(rr)
    a, b = np.load(f"{d}/{fr}.npy").astype(np.float64), np.load(f"{d}/{ft}.npy").astype(np.float64)
    print(f"{name}: PyTorch median {mt:.2f} images/s ({min(rt):.2f}-{max(rt):.2f}, {len(rt)} batches); "
          f"rdmlearn median {mr:.2f} ({min(rr):.2f}-{max(rr):.2f}, {len(rr)}); ratio {mr / mt:.2f} (>= 1.2 wanted); "
          f"max |diff| / max |torch| {np.abs(a - b).max() / np.abs(b).max():.1e}")
PYEOF
